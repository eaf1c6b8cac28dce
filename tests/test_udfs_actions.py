"""GUI action converters, without Spark: each format's documented syntax -> the one action space,
with the edge cases (pixels vs normalised, (y, x) order, the 0-1000 scale, scroll signs, tap vs
swipe) and a reason code for every action that cannot convert."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from schemas.actions import ARGUMENTS, Function
from udfs.actions import (CONVERTERS, Action, ActionError, from_aitw, from_android_control, from_code, from_gui_odyssey,
                          from_mind2web)
from jobs.ops.samples import text_policy
from jobs.runtime.config import load_config
from tests.conftest import SHARED_DATA, needs_shared_data
from udfs.readers import read_file
from udfs.text import chat_turns

SCREEN = (1920.0, 1080.0)


def canonical(actions: list[Action]) -> list[str]:
    return [a.canonical() for a in actions]


def refused(convert, raw, screen=SCREEN) -> str:
    with pytest.raises(ActionError) as err:
        convert(raw, screen)
    return err.value.reason


# ---------------------------------------------------------------- pyautogui / Aguvis


@pytest.mark.parametrize("code, expected", [
    ("pyautogui.click(x=0.8102, y=0.9463)", "click(x=0.8102, y=0.9463)"),
    ("pyautogui.click(0.25, 0.5)", "click(x=0.2500, y=0.5000)"),
    ("pyautogui.moveTo(1881.5, 1116.0)", None),  # pixels below the screen: out of range (1080 high)
    ("pyautogui.moveTo(960, 540)", "move_mouse(x=0.5000, y=0.5000)"),
    ("pyautogui.doubleClick(x=480, y=270)", "double_click(x=0.2500, y=0.2500)"),
    ("pyautogui.click(x=480, y=270, clicks=2)", "double_click(x=0.2500, y=0.2500)"),
    ("pyautogui.rightClick(x=0.1, y=0.2)", "right_click(x=0.1000, y=0.2000)"),
    ("pyautogui.click(x=0.1, y=0.2, button='right')", "right_click(x=0.1000, y=0.2000)"),
    ("pyautogui.hotkey('ctrl', 'c')", "press(keys=['ctrl', 'c'])"),
    ("pyautogui.press('Enter')", "press(keys=['enter'])"),
    ("pyautogui.press(['tab', 'tab'])", "press(keys=['tab', 'tab'])"),
    ("pyautogui.write(message='New York')", "type(text='New York')"),
    ("pyautogui.typewrite('it\\'s')", "type(text=\"it's\")"),
    ("pyautogui.scroll(page=-0.5)", "scroll(direction='up', amount=0.5)"),
    ("pyautogui.scroll(page=2)", "scroll(direction='down', amount=2)"),
    ("pyautogui.hscroll(page=-1)", "scroll(direction='left', amount=1)"),
    ("pyautogui.hscroll(3)", "scroll(direction='right', amount=3)"),
    ("mobile.swipe(from_coord=[0.581,0.898], to_coord=[0.601,0.518])", "swipe(from_xy=[0.5810, 0.8980], to_xy=[0.6010, 0.5180])"),
    ("mobile.home()", "navigate_home()"),
    ("mobile.back()", "navigate_back()"),
    ("mobile.wait(seconds=3)", "wait(seconds=3)"),
    ("mobile.open_app(app_name='Google Maps')", "open_app(app_name='Google Maps')"),
    ("mobile.long_press(x=0.5, y=0.25)", "long_press(x=0.5000, y=0.2500)"),
    ("mobile.terminate(status='success')", "final_answer(answer='success')"),
    ("answer('The cheapest is $12.')", "final_answer(answer='The cheapest is $12.')"),
])
def test_pyautogui_and_aguvis_calls(code, expected):
    if expected is None:
        assert refused(from_code, code) == "coordinates_out_of_range"
    else:
        assert canonical(from_code(code, SCREEN)) == [expected]


def test_a_move_then_drag_is_one_drag_and_pixels_need_the_screen():
    actions = from_code("pyautogui.moveTo(192, 108)\npyautogui.dragTo(1728, 972)", SCREEN)
    assert canonical(actions) == ["drag(from_xy=[0.1000, 0.1000], to_xy=[0.9000, 0.9000])"]
    assert actions[0].row()["to_x"] == pytest.approx(0.9) and "dragTo" in actions[0].row()["raw"]
    assert refused(from_code, "pyautogui.dragTo(0.5, 0.5)") == "malformed_action"
    assert refused(from_code, "pyautogui.click(x=300, y=200)", None) == "missing_screen_size"
    assert canonical(from_code("pyautogui.click(x=0.3, y=0.2)", None)) == ["click(x=0.3000, y=0.2000)"]  # normalised


@pytest.mark.parametrize("code, reason", [
    ("pyautogui.tripleClick(0.5, 0.5)", "unknown_action"),
    ("os.system('rm -rf /')", "unknown_action"),  # parsed as data, never run
    ("pyautogui.click(x=__import__('os'), y=1)", "malformed_action"),
    ("pyautogui.click(x=0.5", "malformed_action"),
    ("x = 1", "malformed_action"),
    ("pyautogui.click(x=-0.1, y=0.5)", "coordinates_out_of_range"),
    ("pyautogui.scroll(page=0)", "malformed_action"),
    ("pyautogui.write(5)", "malformed_action"),
    ("", "malformed_action"),
])
def test_code_that_cannot_convert_has_a_reason(code, reason):
    assert refused(from_code, code) == reason


# ---------------------------------------------------------------- AITW


def aitw(kind, touch=(-1, -1), lift=(-1, -1), text=""):
    return {"result_action_type": kind, "result_touch_yx": json.dumps(list(touch)), "result_lift_yx": json.dumps(list(lift)),
            "result_action_text": text}


def test_aitw_points_are_y_then_x_and_close_points_are_taps():
    assert canonical(from_aitw(aitw(4, (0.8, 0.2), (0.81, 0.21)))) == ["click(x=0.2000, y=0.8000)"]
    assert canonical(from_aitw(aitw(4, (0.8, 0.5), (0.2, 0.5)))) == ["swipe(from_xy=[0.5000, 0.8000], to_xy=[0.5000, 0.2000])"]
    assert canonical(from_aitw(aitw(4, (0.50, 0.50), (0.53, 0.52))))[0].startswith("click")  # 0.036 apart: a tap
    assert canonical(from_aitw(aitw(4, (0.50, 0.50), (0.54, 0.52))))[0].startswith("swipe")  # 0.045 apart
    assert canonical(from_aitw({"result_action_type": 4, "result_touch_yx": [0.1, 0.9], "result_lift_yx": [0.1, 0.9]})) == [
        "click(x=0.9000, y=0.1000)"]  # lists as well as their JSON text


@pytest.mark.parametrize("step, expected", [
    (aitw(3, text="coffee near me"), "type(text='coffee near me')"),
    (aitw(5), "navigate_back()"),
    (aitw(6), "navigate_home()"),
    (aitw(7), "press(keys=['enter'])"),
    (aitw(10), "final_answer(answer='complete')"),
    (aitw(11), "final_answer(answer='impossible')"),
])
def test_aitw_buttons_typing_and_ends(step, expected):
    assert canonical(from_aitw(step)) == [expected]


def test_aitw_steps_that_cannot_convert():
    assert refused(from_aitw, aitw(8)) == "unknown_action"
    assert refused(from_aitw, aitw(4, (1.2, 0.5), (1.2, 0.5))) == "coordinates_out_of_range"
    assert refused(from_aitw, {"result_action_type": 4, "result_touch_yx": "[0.5]", "result_lift_yx": "[0.5, 0.5]"}) == "malformed_action"
    assert refused(from_aitw, {"result_touch_yx": "[0.5, 0.5]"}) == "malformed_action"


# ---------------------------------------------------------------- AndroidControl


@pytest.mark.parametrize("action, expected", [
    ({"action_type": "click", "x": 540, "y": 1200}, "click(x=0.5000, y=0.5000)"),
    ({"action_type": "long_press", "x": 108, "y": 240}, "long_press(x=0.1000, y=0.1000)"),
    ({"action_type": "scroll", "direction": "down"}, "scroll(direction='down')"),
    ({"action_type": "open_app", "app_name": "Clock"}, "open_app(app_name='Clock')"),
    ({"action_type": "input_text", "text": "7 am"}, "type(text='7 am')"),
    ({"action_type": "navigate_home"}, "navigate_home()"),
    ({"action_type": "navigate_back"}, "navigate_back()"),
    ({"action_type": "wait"}, "wait()"),
    ('{"action_type": "click", "x": 1080, "y": 2400}', "click(x=1.0000, y=1.0000)"),
])
def test_android_control_actions_in_pixels_of_the_screenshot(action, expected):
    assert canonical(from_android_control(action, (1080.0, 2400.0))) == [expected]


def test_android_control_actions_that_cannot_convert():
    assert refused(from_android_control, {"action_type": "click", "x": 540, "y": 1200}, None) == "missing_screen_size"
    assert refused(from_android_control, {"action_type": "click", "x": 540}) == "malformed_action"
    assert refused(from_android_control, {"action_type": "scroll", "direction": "sideways"}) == "malformed_action"
    assert refused(from_android_control, {"action_type": "dance"}) == "unknown_action"
    assert refused(from_android_control, "{not json") == "malformed_action"


# ---------------------------------------------------------------- GUI-Odyssey


@pytest.mark.parametrize("step, expected", [
    ({"action": "CLICK", "info": [[500, 250]]}, "click(x=0.5000, y=0.2500)"),
    ({"action": "LONG_PRESS", "info": [[1000, 0]]}, "long_press(x=1.0000, y=0.0000)"),
    ({"action": "SCROLL", "info": [[500, 800], [520, 200]]}, "scroll(direction='down')"),  # finger up: content scrolls down
    ({"action": "SCROLL", "info": [[500, 200], [480, 800]]}, "scroll(direction='up')"),
    ({"action": "SCROLL", "info": [[900, 500], [100, 450]]}, "scroll(direction='right')"),
    ({"action": "SCROLL", "info": [[100, 500], [900, 550]]}, "scroll(direction='left')"),
    ({"action": "TEXT", "info": "hiking boots"}, "type(text='hiking boots')"),
    ({"action": "KEY_HOME", "info": ""}, "navigate_home()"),
    ({"action": "KEY_BACK", "info": ""}, "navigate_back()"),
    ({"action": "KEY_APPSELECT", "info": ""}, "press(keys=['app_switch'])"),
    ({"action": "COMPLETE", "info": ""}, "final_answer(answer='complete')"),
    ({"action": "INCOMPLETE", "info": ""}, "final_answer(answer='incomplete')"),
])
def test_gui_odyssey_steps_on_the_thousand_scale(step, expected):
    assert canonical(from_gui_odyssey(step)) == [expected]


def test_gui_odyssey_steps_that_cannot_convert():
    assert refused(from_gui_odyssey, {"action": "CLICK", "info": [[1200, 10]]}) == "coordinates_out_of_range"
    assert refused(from_gui_odyssey, {"action": "SCROLL", "info": [[1, 2]]}) == "malformed_action"
    assert refused(from_gui_odyssey, {"action": "SHAKE", "info": ""}) == "unknown_action"


# ---------------------------------------------------------------- Mind2Web


def mind2web(op, value="", box=(100.0, 50.0, 200.0, 40.0), original=None):
    x, y, w, h = box
    return {"operation": {"op": op, "original_op": original or op, "value": value},
            "bbox": {"x": x, "y": y, "width": w, "height": h}}


def test_mind2web_acts_at_the_centre_of_the_target_element():
    page = (1280.0, 720.0)
    assert canonical(from_mind2web(mind2web("CLICK"), page)) == ["click(x=0.1562, y=0.0972)"]
    assert canonical(from_mind2web(mind2web("TYPE", "New York"), page)) == ["click(x=0.1562, y=0.0972)",
                                                                             "type(text='New York')"]
    assert canonical(from_mind2web(mind2web("SELECT", "2 adults"), page)) == ["select(x=0.1562, y=0.0972, option='2 adults')"]
    assert canonical(from_mind2web(mind2web("CLICK", original="HOVER"), page)) == ["move_mouse(x=0.1562, y=0.0972)"]
    assert refused(from_mind2web, mind2web("CLICK"), None) == "missing_screen_size"
    assert refused(from_mind2web, mind2web("CLICK", box=(100.0, 900.0, 10.0, 10.0)), page) == "coordinates_out_of_range"
    assert refused(from_mind2web, {"operation": {"op": "CLICK", "value": ""}}, page) == "malformed_action"
    assert refused(from_mind2web, mind2web("SCROLL"), page) == "unknown_action"


@needs_shared_data("mind2web")
def test_every_real_mind2web_action_converts_or_has_a_reason_by_the_source_yaml():
    """Both test splits through the mind2web source's reader and mapping (what ingest and normalize run)."""
    config = load_config("local", check_sources=False)
    source, policy = config.sources["mind2web"], text_policy(config)
    outcomes, functions = Counter(), Counter()
    for path in sorted((SHARED_DATA / "mind2web").glob("mind2web_data_test_*.json")):
        for record in read_file(str(path), path.name, source):
            assert record.reason is None, record.detail
            chat = chat_turns(record.fields, path.name, record.row_index, source, policy)
            outcomes[chat["reason"] or "converted"] += 1
            functions.update(a["function"] for a in chat["actions"])
    assert sum(outcomes.values()) == 3467  # 429 tasks
    assert outcomes["converted"] == 3446 and outcomes["malformed_action"] == 16  # the clicks without a bbox
    assert outcomes["coordinates_out_of_range"] == 5  # below the 1280x720 viewport
    assert functions == {"click": 3206, "type": 383, "select": 170, "move_mouse": 70}
    print(f"\nMind2Web (429 tasks, 3,467 actions): {dict(outcomes)}; functions {dict(functions)}")


def test_every_function_has_a_canonical_form_and_a_converter_per_format():
    assert set(ARGUMENTS) == set(Function)
    assert set(CONVERTERS) == {"pyautogui", "aguvis", "aitw", "android_control", "gui_odyssey", "mind2web"}
    with pytest.raises(ActionError, match="malformed_action"):
        Action(Function.CLICK, {"x": 0.5})


# ---------------------------------------------------------------- trajectories as samples (reader + mapping)


def records(tmp_path, spec: dict, episodes: list[dict]):
    """Episodes written as a JSON array and read through a source config, as ingest and normalize do."""
    from jobs.runtime.config import SourceConfig

    path = tmp_path / "episodes.json"
    path.write_text(json.dumps(episodes))
    source = SourceConfig.model_validate({"name": "gui", "format": "llava_json", "path": str(tmp_path), "records": "json_array",
                                          "key": "{{ episode_id }}", "text_only": True, "license": "test", **spec})
    policy = text_policy(load_config("local", check_sources=False))
    out = []
    for record in read_file(str(path), path.name, source):
        chat = chat_turns(record.fields, path.name, record.row_index, source, policy) if record.reason is None else None
        out.append((record, chat))
    return out


ANDROID = [{"episode_id": "e1", "goal": "Set an alarm for 7 am", "width": 1080, "height": 2400,
            "steps": [{"action": {"action_type": "open_app", "app_name": "Clock"}},
                      {"action": {"action_type": "click", "x": 540, "y": 1200}},
                      {"action": {"action_type": "teleport"}},
                      {"action": {"action_type": "input_text", "text": "7:00"}}]}]


def test_a_sample_per_step_carries_the_task_and_the_earlier_actions(tmp_path):
    spec = {"actions": {"converter": "android_control", "steps": "steps", "action": "action", "instruction": "{{ goal }}",
                        "screen_width": "{{ width }}", "screen_height": "{{ height }}"}}
    read = records(tmp_path, spec, ANDROID)
    assert [r.source_key for r, _ in read] == ["e1#0", "e1#1", "e1#2", "e1#3"]
    assert len({r.row_index for r, _ in read}) == 4  # each step its own row in the rejects' lineage
    (_, first), (_, second), (_, unknown), (_, last) = read
    assert first["turns"] == [{"user": "Set an alarm for 7 am", "assistant": "open_app(app_name='Clock')"}]
    assert second["turns"][0]["assistant"] == "click(x=0.5000, y=0.5000)" and second["actions"][0]["x"] == 0.5
    assert second["turns"][0]["user"] == "Set an alarm for 7 am\nPrevious actions:\nopen_app(app_name='Clock')"
    assert unknown["reason"] == "unknown_action" and "step 2" in unknown["detail"] and not unknown["turns"]
    assert "(step 2 could not be read)" in last["turns"][0]["user"] and last["reason"] is None


def test_a_sample_per_episode_has_a_turn_per_step_or_is_rejected_with_the_step(tmp_path):
    episodes = [{"episode_id": "ok", "goal": "Open settings", "steps": [
                    {"result_action_type": 4, "result_touch_yx": "[0.9, 0.5]", "result_lift_yx": "[0.3, 0.5]"},
                    {"result_action_type": 4, "result_touch_yx": "[0.2, 0.1]", "result_lift_yx": "[0.2, 0.1]"},
                    {"result_action_type": 10}]},
                {"episode_id": "bad", "goal": "x", "steps": [{"result_action_type": 4, "result_touch_yx": "[1.5, 0.5]",
                                                              "result_lift_yx": "[1.5, 0.5]"}]}]
    spec = {"actions": {"converter": "aitw", "steps": "steps", "instruction": "{{ goal }}", "per": "episode"}}
    (ok_record, ok), (_, bad) = records(tmp_path, spec, episodes)
    assert ok_record.source_key == "ok" and ok["reason"] is None
    assert [t["assistant"] for t in ok["turns"]] == ["swipe(from_xy=[0.5000, 0.9000], to_xy=[0.5000, 0.3000])",
                                                     "click(x=0.1000, y=0.2000)", "final_answer(answer='complete')"]
    assert [t["user"] for t in ok["turns"]] == ["Open settings", "Next action.", "Next action."]
    assert [a["turn_index"] for a in ok["actions"]] == [0, 1, 2]
    assert bad["reason"] == "coordinates_out_of_range" and bad["detail"].startswith("step 0:")


def test_a_gui_source_is_checked_at_load():
    from jobs.runtime.config import SourceConfig

    base = {"name": "gui", "format": "llava_json", "path": "/data", "license": "x", "text_only": True}
    with pytest.raises(ValueError, match="unknown converter `selenium`"):
        SourceConfig.model_validate({**base, "actions": {"converter": "selenium", "steps": "s", "instruction": "i"}})
    with pytest.raises(ValueError, match="template `actions.instruction`"):
        SourceConfig.model_validate({**base, "actions": {"converter": "aitw", "steps": "s", "instruction": "{{ goal "}})


def test_each_step_sample_gets_its_own_screenshot(tmp_path):
    episodes = [{"episode_id": "e1", "goal": "Open the menu", "steps": [
        {"screenshot": "shots/e1_0.png", "action": {"action_type": "click", "x": 10, "y": 20}},
        {"screenshot": "shots/e1_1.png", "action": {"action_type": "navigate_back"}}]}]
    spec = {"text_only": False, "images": {"template": "{{ _step_fields.screenshot }}"},
            "actions": {"converter": "android_control", "steps": "steps", "action": "action", "instruction": "{{ goal }}",
                        "screen_width": "100", "screen_height": "200"}}
    read = records(tmp_path, spec, episodes)
    assert [[image.path for image in r.images] for r, _ in read] == [[str(tmp_path / "shots" / "e1_0.png")],
                                                                    [str(tmp_path / "shots" / "e1_1.png")]]
    assert [chat["turns"][0]["assistant"] for _, chat in read] == ["click(x=0.1000, y=0.1000)", "navigate_back()"]
