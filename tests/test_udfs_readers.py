"""Format adapters read one file each, inside an executor; here they run without Spark."""

import io
import json
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq

from jobs.runtime.config import SourceConfig
from udfs.arrow import rows_of
from udfs.readers import READ_ROW, fetch_images_batches, read_file, read_files_batches, sample_id


def source(**fields) -> SourceConfig:
    return SourceConfig.model_validate({"name": "s", "path": "/d", "license": "x", **fields})


def test_hf_parquet_structs_and_keys(tmp_path):
    table = pa.Table.from_pylist([
        {"id": "a", "image": {"bytes": b"\x89PNG-a", "path": "a.png"}, "q": "Q?", "a": "A."},
        {"id": "b", "image": {"bytes": None, "path": "pics/b.png"}, "q": "Q?", "a": "A."},
    ])
    pq.write_table(table, tmp_path / "part.parquet")
    spec = source(format="hf_parquet", key="{{ id }}", images={"column": "image"},
                  turns=[{"user": "{{ q }}", "assistant": "{{ a }}"}])
    records = list(read_file(str(tmp_path / "part.parquet"), "part.parquet", spec))
    assert [r.source_key for r in records] == ["a", "b"]
    assert records[0].images[0].data == b"\x89PNG-a" and records[0].fields["image"] == ["a.png"]
    assert records[1].images[0].data is None and records[1].images[0].path == str(tmp_path / "pics" / "b.png")


def test_jsonl_malformed_line_is_a_reject_and_reading_goes_on(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"id": 1, "conversations": []}\n{"id": 2, oops\n[1, 2]\n{"id": 4, "conversations": []}\n')
    records = list(read_file(str(path), "data.jsonl", source(format="llava_json", key="{{ id }}", text_only=True)))
    assert [(r.row_index, r.reason) for r in records] == [(0, None), (1, "malformed_record"), (2, "malformed_record"), (3, None)]
    assert records[1].detail.startswith("line 2:")


def test_json_object_records_get_their_key(tmp_path):
    path = tmp_path / "problems.json"
    path.write_text(json.dumps({"17": {"question": "Q"}, "42": {"question": "R"}}))
    spec = source(format="llava_json", records="json_object", images={"template": "tables/{{ _key }}.png"},
                  turns=[{"user": "{{ question }}", "assistant": "x"}])
    records = list(read_file(str(path), "problems.json", spec))
    assert [r.source_key for r in records] == ["17", "42"]
    assert records[1].images[0].path == str(tmp_path / "tables" / "42.png")


def test_image_template_with_count(tmp_path):
    path = tmp_path / "dev.jsonl"
    path.write_text('{"identifier": "7-1", "directory": "3"}\n')
    spec = source(format="llava_json", key="{{ identifier }}",
                  images={"template": "images/{{ directory }}/dev-{{ identifier }}-{{ i }}.png", "count": 3},
                  turns=[{"user": "u", "assistant": "a"}])
    (record,) = read_file(str(path), "dev.jsonl", spec)
    assert [i.path.rsplit("/", 2)[-2:] for i in record.images] == [["3", f"dev-7-1-{k}.png"] for k in range(3)]


def test_key_template_error_names_the_field(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"name": "a"}\n')
    (record,) = read_file(str(path), "x.jsonl", source(format="llava_json", key="{{ id }}", text_only=True))
    assert record.reason == "template_error" and "'id' is undefined" in record.detail


def _tar(path, members):
    with tarfile.open(path, "w") as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def test_webdataset_groups_members_by_key(tmp_path):
    _tar(tmp_path / "s.tar", [
        ("a.jpg", b"jpeg-a"), ("a.json", b'{"question": "Q1"}'), ("a.txt", b"caption a"),
        ("b.left.png", b"png-l"), ("b.right.png", b"png-r"), ("b.json", b'{"question": "Q2"}'),
    ])
    spec = source(format="webdataset", turns=[{"user": "{{ question }}", "assistant": "x"}])
    records = list(read_file(str(tmp_path / "s.tar"), "s.tar", spec))
    assert [r.source_key for r in records] == ["s.tar/a", "s.tar/b"]
    assert records[0].fields["txt"] == "caption a" and [i.data for i in records[0].images] == [b"jpeg-a"]
    assert [i.path for i in records[1].images] == ["b.left.png", "b.right.png"]


def test_corrupt_files_become_one_reject_each(tmp_path):
    (tmp_path / "bad.tar").write_bytes(b"not a tar at all" * 40)
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 broken")
    specs = {
        "bad.tar": source(format="webdataset", turns=[{"user": "u", "assistant": "a"}]),
        "bad.parquet": source(format="cauldron_parquet"),
    }
    for name, spec in specs.items():
        (record,) = read_file(str(tmp_path / name), name, spec)
        assert record.reason == "unreadable_file" and record.detail.startswith(f"{name}: stopped after 0 records")


def test_batches_fetch_folder_images_later(tmp_path):
    (tmp_path / "img.png").write_bytes(b"image-bytes")
    (tmp_path / "data.json").write_text(json.dumps([
        {"id": "1", "image": "img.png", "conversations": []},
        {"id": "2", "image": "gone.png", "conversations": []},
    ]))
    spec = source(name="demo", format="llava_json", key="{{ id }}")
    files = [pa.RecordBatch.from_pylist([{"source": "demo", "uri": f"file:{tmp_path}/data.json", "file": "data.json"}])]
    listed = list(read_files_batches(files, {"demo": spec}, fetch_images=False))
    assert all(b.schema.equals(READ_ROW) for b in listed)
    assert [r["images"][0]["bytes"] for r in rows_of(listed)] == [None, None]
    fetched = list(rows_of(fetch_images_batches(listed)))
    assert fetched[0]["images"][0]["bytes"] == b"image-bytes" and fetched[0]["images"][0]["sha256"]
    assert fetched[1]["images"][0] == {"path": str(tmp_path / "gone.png"), "bytes": None, "sha256": None}
    assert fetched[0]["sample_id"] == sample_id("demo", "default", "1")
