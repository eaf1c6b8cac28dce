"""Config loading: overlays, --set, references, and errors that name the file and the key."""

from pathlib import Path
import shutil

import pytest

from jobs.runtime.config import ConfigError, load_config

CONF = Path(__file__).resolve().parents[1] / "conf"


@pytest.fixture
def conf_copy(tmp_path) -> Path:
    target = tmp_path / "conf"
    shutil.copytree(CONF, target)
    return target


def test_overlays_and_overrides_merge_in_order():
    config = load_config("local", ["normalize.image.max_side=1024", "paths.lake=/tmp/x"])
    assert config.env == "local"
    assert config.normalize.image.max_side == 1024
    assert config.normalize.image.min_side == 32  # from base.yaml, untouched
    assert config.spark.conf["spark.sql.warehouse.dir"] == "/tmp/x/warehouse"  # reference follows the override
    assert config.paths.demo_sources == "/tmp/x/demo_sources"


def test_managed_environments_add_no_spark_settings():
    for env in ("databricks", "dataproc"):
        config = load_config(env)
        assert config.spark.managed and not config.spark.conf
        assert config.catalog.schema_prefix == "finelake_"


def test_unknown_key_names_the_overlay_file(conf_copy):
    (conf_copy / "local.yaml").write_text((conf_copy / "local.yaml").read_text() + "\nnormalize:\n  image:\n    max_sid: 5\n")
    with pytest.raises(ConfigError) as err:
        load_config("local", conf_dir=conf_copy)
    assert f"{conf_copy / 'local.yaml'}: normalize.image.max_sid: unknown key" in str(err.value)


def test_wrong_type_from_set_names_the_flag():
    with pytest.raises(ConfigError) as err:
        load_config("local", ["normalize.image.max_side=big"])
    assert "--set normalize.image.max_side=big: normalize.image.max_side:" in str(err.value)
    assert "integer" in str(err.value)


def test_missing_required_key_in_a_source_names_the_source_file(conf_copy):
    (conf_copy / "sources" / "broken.yaml").write_text("format: hf_parquet\npath: /data\nimages: {column: image}\nturns: []\n")
    with pytest.raises(ConfigError) as err:
        load_config("local", conf_dir=conf_copy)
    message = str(err.value)
    assert f"{conf_copy / 'sources' / 'broken.yaml'}: license: required key is missing" in message


def test_template_syntax_error_is_reported_at_load(conf_copy):
    (conf_copy / "sources" / "bad_template.yaml").write_text(
        "format: hf_parquet\npath: /data\nlicense: x\nimages: {column: image}\n"
        "turns:\n  - user: '{{ question '\n    assistant: '{{ answer }}'\n"
    )
    with pytest.raises(ConfigError) as err:
        load_config("local", conf_dir=conf_copy)
    assert "bad_template.yaml" in str(err.value) and "turns[0].user" in str(err.value)


def test_reference_to_a_missing_key_is_an_error():
    with pytest.raises(ConfigError) as err:
        load_config("local", ["paths.demo_sources=${paths.nowhere}/x"])
    assert "paths.demo_sources" in str(err.value) and "${paths.nowhere}" in str(err.value)


def test_source_selection_patterns():
    config = load_config("local", ["ingest.sources=[demo_*, nlvr]"])
    assert [s.name for s in config.selected_sources()] == [
        "demo_cauldron", "demo_hf_vqa", "demo_llava", "demo_webdataset", "nlvr",
    ]
    with pytest.raises(ConfigError, match="matches no file in conf/sources"):
        load_config("local", ["ingest.sources=[nope]"])


def test_format_defaults_fill_the_mapping():
    config = load_config("local")
    cauldron, llava = config.sources["demo_cauldron"], config.sources["demo_llava"]
    assert cauldron.pairs.column == "texts" and cauldron.images.column == "images"
    assert llava.conversation.role_field == "from" and llava.images.column == "image"


def test_unknown_environment():
    with pytest.raises(ConfigError, match="unknown environment"):
        load_config("staging")


def test_digest_changes_with_config():
    assert load_config("local").digest() != load_config("local", ["normalize.image.quality=80"]).digest()
