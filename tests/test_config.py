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


@pytest.mark.parametrize("change, field, says", [
    (("think ::= [^<]*", "think ::= [^<*"), "grammar", "does not compile"),
    (("root ::= \"<think>\"", "root ::= \"<thought>\""), "grammar", "no_think_tags"),  # the parser wants <think>
    (("rule: answer", "rule: nowhere"), "budget.rule", "does not compile"),
    (("answer_tokens: 12", "answer_tokens: 500"), "budget.answer_tokens", "leaves no thinking"),
])
def test_a_reasoning_grammar_that_the_stages_cannot_use_is_refused_at_load(conf_copy, change, field, says):
    prompt = conf_copy / "prompts" / "reasoning.yaml"
    assert change[0] in prompt.read_text()
    prompt.write_text(prompt.read_text().replace(*change))
    with pytest.raises(ConfigError) as err:
        load_config("local", conf_dir=conf_copy)
    assert str(err.value).startswith(f"{prompt}: {field}") and says in str(err.value)


@pytest.mark.parametrize("change, field, says", [
    ("    relevance: {type: integer, minimum: 1, maximum: 5}\n", "json_schema", "missing_axes:relevance"),
    ("    relevance: {type: integer, minimum: 1, maximum: 5}\n", "json_schema", "out_of_range:relevance"),
    ("  type: object\n", "json_schema", "does not compile"),
])
def test_a_rating_schema_that_disagrees_with_its_parser_is_refused_at_load(conf_copy, change, field, says):
    prompt = conf_copy / "prompts" / "rating.yaml"
    text = prompt.read_text()
    assert change in text
    replaced = {"missing_axes:relevance": "", "out_of_range:relevance": "    relevance: {type: integer, minimum: 0, maximum: 9}\n",
                "does not compile": "  type: objekt\n"}[says]
    prompt.write_text(text.replace(change, replaced).replace("required: [formatting, relevance, ", "required: [formatting, "
                                                              if says.startswith("missing") else "required: [formatting, relevance, "))
    with pytest.raises(ConfigError) as err:
        load_config("local", conf_dir=conf_copy)
    assert str(err.value).startswith(f"{prompt}: {field}") and says in str(err.value)


def test_a_source_maps_the_text_that_stands_for_its_images():
    config = load_config("local")
    assert "{{ table }}" in config.sources["tabmwp"].image_text
    assert dict(config.sources["tabmwp"].templates())["image_text"] == config.sources["tabmwp"].image_text


def test_a_user_folder_adds_sources_and_benchmarks_over_the_packaged_ones(tmp_path):
    user = tmp_path / "user"
    (user / "sources").mkdir(parents=True)
    (user / "sources" / "my_gui.yaml").write_text(
        "format: llava_json\npath: /data/gui\nrecords: json_array\ntext_only: true\nlicense: x\ncategory: gui_agent\n"
        "actions: {converter: aitw, steps: steps, instruction: '{{ goal }}'}\n")
    (user / "sources" / "tabmwp.yaml").write_text((CONF / "sources" / "tabmwp.yaml").read_text().replace("category: math", "category: tables"))
    (user / "benchmarks.yaml").write_text("benchmarks:\n  my_bench:\n    source: tabmwp\n")
    config = load_config("local", ["ingest.sources=[my_gui]"], user_dir=user)
    assert config.sources["my_gui"].actions.converter == "aitw" and config.selected_sources()[0].name == "my_gui"
    assert config.sources["tabmwp"].category == "tables" and "nlvr" in config.sources  # replaced one, kept the rest
    assert "my_bench" in config.benchmarks and set(load_config("local").benchmarks) < set(config.benchmarks)
    (user / "sources" / "broken.yaml").write_text("format: llava_json\npath: /x\n")
    with pytest.raises(ConfigError, match=f"{user / 'sources' / 'broken.yaml'}: license"):
        load_config("local", user_dir=user)
