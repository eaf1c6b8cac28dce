"""GUI agent actions in their datasets' own syntax -> the one action space of schemas/actions.py.

Pure functions, one converter per format, each from a raw action (and the screenshot's size
where the format uses pixels) to a list of Actions (most steps are one action; a Mind2Web TYPE
is a click on the field then the typing). A raw action that cannot be converted raises
ActionError with a reason code of silver.rejects (`unknown_action`, `coordinates_out_of_range`,
`missing_screen_size`, `malformed_action`) and what was wrong. Code strings (pyautogui, Aguvis'
`mobile.*`) are parsed with `ast` as data, never executed.

Conventions (each format's own, as published):
- pyautogui / Aguvis: coordinates are normalised when both are within [0, 1], else pixels of the
  screenshot; `scroll`/`hscroll` amounts (`page=` or clicks): negative = up / left; a `moveTo`
  followed by `dragTo` is one drag.
- AITW: `result_touch_yx` / `result_lift_yx` are normalised (y, x); a dual point whose touch and
  lift are within 0.04 (L2) is a tap, otherwise a swipe.
- AndroidControl: pixel x, y of the screenshot; scroll directions as given.
- GUI-Odyssey: points on a 0-1000 scale; a SCROLL's direction is that of its larger axis, the
  way the content moves into view (a finger moving up scrolls down).
- Mind2Web: the target element's bbox (pixels of the page screenshot): actions happen at its centre.
"""

from __future__ import annotations

import ast
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from schemas.actions import ARGUMENTS, OPTIONAL, Direction, Function
from schemas.silver_rejects import Reason

Screen = tuple[float, float] | None  # (width, height) in pixels, when known
TAP_DISTANCE = 0.04  # AITW: a dual point this close (normalised L2) is a tap


class ActionError(ValueError):
    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Action:
    function: Function
    arguments: dict[str, Any] = field(default_factory=dict)
    raw: str = ""

    def __post_init__(self):
        expected = dict(ARGUMENTS[self.function])
        unknown = set(self.arguments) - set(expected)
        missing = [a for a in expected if a not in self.arguments and (self.function, a) not in OPTIONAL]
        if unknown or missing:
            raise ActionError(Reason.MALFORMED_ACTION, f"{self.function}: arguments {sorted(self.arguments)}, "
                                                       f"expected {list(expected)}")

    def canonical(self) -> str:
        """`click(x=0.8102, y=0.9463)`: the arguments in their schema order, coordinates to 4 decimals."""
        parts = [f"{name}={_literal(self.arguments[name], kind)}" for name, kind in ARGUMENTS[self.function]
                 if self.arguments.get(name) is not None]
        return f"{self.function}({', '.join(parts)})"

    def row(self) -> dict[str, Any]:
        """The ACTION struct of schemas/actions.py."""
        a = self.arguments
        start, end = a.get("from_xy") or (a.get("x"), a.get("y")), a.get("to_xy") or (None, None)
        text = next((a[k] for k in ("text", "app_name", "answer", "option") if a.get(k) is not None), None)
        return {"function": str(self.function), "x": start[0], "y": start[1], "to_x": end[0], "to_y": end[1],
                "direction": None if a.get("direction") is None else str(a["direction"]), "amount": _float(a.get("amount")), "text": text, "keys": a.get("keys"),
                "seconds": _float(a.get("seconds")), "canonical": self.canonical(), "raw": self.raw}


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _literal(value: Any, kind: str) -> str:
    if kind == "coordinate":
        return f"{value:.4f}"
    if kind == "point":
        return f"[{value[0]:.4f}, {value[1]:.4f}]"
    if kind == "number":
        return f"{value:g}"
    if kind == "keys":
        return repr([str(k) for k in value])
    return repr(str(value))  # text, direction: quoted and escaped as a Python literal


# ---------------------------------------------------------------- coordinates


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ActionError(Reason.MALFORMED_ACTION, f"{what} is {value!r}, expected a number")
    return float(value)


def _in_range(x: float, y: float, what: str) -> tuple[float, float]:
    if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
        raise ActionError(Reason.COORDINATES_OUT_OF_RANGE, f"{what} ({x:.4f}, {y:.4f}) is outside the screen")
    return round(x, 6), round(y, 6)


def pixels(x: Any, y: Any, screen: Screen, what: str = "point") -> tuple[float, float]:
    """Pixels of the screenshot -> [0, 1]."""
    x, y = _number(x, f"{what} x"), _number(y, f"{what} y")
    if not screen or not screen[0] or not screen[1]:
        raise ActionError(Reason.MISSING_SCREEN_SIZE, f"{what} ({x:g}, {y:g}) is in pixels and the screenshot's size is unknown")
    return _in_range(x / screen[0], y / screen[1], what)


def normalised(x: Any, y: Any, what: str = "point", scale: float = 1.0) -> tuple[float, float]:
    """Coordinates on a 0-`scale` range -> [0, 1]."""
    return _in_range(_number(x, f"{what} x") / scale, _number(y, f"{what} y") / scale, what)


def pixels_or_normalised(x: Any, y: Any, screen: Screen, what: str = "point") -> tuple[float, float]:
    """Both within [0, 1]: already normalised; otherwise pixels."""
    x, y = _number(x, f"{what} x"), _number(y, f"{what} y")
    if 0.0 <= x <= 1.0 and 0.0 <= y <= 1.0:
        return normalised(x, y, what)
    return pixels(x, y, screen, what)


def _point_arguments(function: Function, xy: tuple[float, float], raw: str, **more: Any) -> Action:
    return Action(function, {"x": xy[0], "y": xy[1], **more}, raw)


# ---------------------------------------------------------------- pyautogui and Aguvis code


@dataclass
class _Call:
    name: str  # "pyautogui.click", "mobile.swipe", "answer"
    args: list[Any]
    kwargs: dict[str, Any]
    source: str

    def get(self, position: int, name: str, default: Any = ...) -> Any:
        if name in self.kwargs:
            return self.kwargs[name]
        if position < len(self.args):
            return self.args[position]
        if default is ...:
            raise ActionError(Reason.MALFORMED_ACTION, f"`{self.source}`: argument `{name}` is missing")
        return default


def _calls(code: str) -> list[_Call]:
    try:
        tree = ast.parse(code.strip())
    except SyntaxError as err:
        raise ActionError(Reason.MALFORMED_ACTION, f"not a call: {err.msg} in `{code.strip()[:80]}`") from None
    calls = []
    for statement in tree.body:
        if not (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)):
            raise ActionError(Reason.MALFORMED_ACTION, f"not a call: `{ast.get_source_segment(code.strip(), statement)}`")
        call = statement.value
        source = ast.get_source_segment(code.strip(), call) or ""
        try:
            name = ast.unparse(call.func)
            args = [ast.literal_eval(a) for a in call.args]
            kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg}
        except (ValueError, TypeError, SyntaxError):
            raise ActionError(Reason.MALFORMED_ACTION, f"arguments are not literals in `{source}`") from None
        calls.append(_Call(name, args, kwargs, source))
    return calls


def _scroll(call: _Call, horizontal: bool) -> Action:
    amount = _number(call.get(0, "page", call.kwargs.get("clicks", call.kwargs.get("amount", ...))), "scroll amount")
    if amount == 0:
        raise ActionError(Reason.MALFORMED_ACTION, f"`{call.source}`: a scroll of 0")
    direction = (Direction.LEFT if amount < 0 else Direction.RIGHT) if horizontal else (Direction.UP if amount < 0 else Direction.DOWN)
    return Action(Function.SCROLL, {"direction": direction, "amount": abs(amount)}, call.source)


def _keys(value: Any, call: _Call) -> list[str]:
    keys = value if isinstance(value, list) else [value]
    if not keys or not all(isinstance(k, str) and k for k in keys):
        raise ActionError(Reason.MALFORMED_ACTION, f"`{call.source}`: keys must be key names")
    return [k.lower() for k in keys]


def _text(value: Any, call: _Call, what: str) -> str:
    if not isinstance(value, str):
        raise ActionError(Reason.MALFORMED_ACTION, f"`{call.source}`: {what} is {type(value).__name__}, expected text")
    return value


def _code_action(call: _Call, screen: Screen) -> Action:
    module, _, verb = call.name.rpartition(".")
    if module not in ("", "pyautogui", "mobile", "computer"):
        raise ActionError(Reason.UNKNOWN_ACTION, f"`{call.name}` is not a pyautogui or Aguvis function")

    def at(function: Function, x_name: str = "x", y_name: str = "y", **more: Any) -> Action:
        xy = pixels_or_normalised(call.get(0, x_name), call.get(1, y_name), screen, call.name)
        return _point_arguments(function, xy, call.source, **more)

    if verb == "click":
        clicks, button = call.kwargs.get("clicks", 1), call.kwargs.get("button", "left")
        if button == "right":
            return at(Function.RIGHT_CLICK)
        return at(Function.DOUBLE_CLICK if clicks == 2 else Function.CLICK)
    simple = {"doubleClick": Function.DOUBLE_CLICK, "rightClick": Function.RIGHT_CLICK, "moveTo": Function.MOVE_MOUSE,
              "long_press": Function.LONG_PRESS}
    if verb in simple:
        return at(simple[verb])
    if verb in ("write", "typewrite", "type"):
        return Action(Function.TYPE, {"text": _text(call.get(0, "message" if "message" in call.kwargs else "text"), call, "text")},
                      call.source)
    if verb in ("press", "hotkey"):
        keys = call.args if verb == "hotkey" else call.get(0, "keys")
        return Action(Function.PRESS, {"keys": _keys(list(keys) if verb == "hotkey" else keys, call)}, call.source)
    if verb in ("scroll", "vscroll", "hscroll"):
        return _scroll(call, verb == "hscroll")
    if verb == "swipe":
        start, end = call.get(0, "from_coord"), call.get(1, "to_coord")
        if not (isinstance(start, (list, tuple)) and isinstance(end, (list, tuple)) and len(start) == len(end) == 2):
            raise ActionError(Reason.MALFORMED_ACTION, f"`{call.source}`: from_coord and to_coord must be [x, y]")
        return Action(Function.SWIPE, {"from_xy": pixels_or_normalised(*start, screen, "from_coord"),
                                       "to_xy": pixels_or_normalised(*end, screen, "to_coord")}, call.source)
    if verb == "home":
        return Action(Function.NAVIGATE_HOME, {}, call.source)
    if verb == "back":
        return Action(Function.NAVIGATE_BACK, {}, call.source)
    if verb == "wait":
        return Action(Function.WAIT, {"seconds": _number(call.get(0, "seconds", 1), "seconds")}, call.source)
    if verb == "open_app":
        return Action(Function.OPEN_APP, {"app_name": _text(call.get(0, "app_name"), call, "app_name")}, call.source)
    if verb == "terminate":
        return Action(Function.FINAL_ANSWER, {"answer": _text(call.get(0, "status"), call, "status")}, call.source)
    if verb == "answer":
        return Action(Function.FINAL_ANSWER, {"answer": _text(call.get(0, "text" if "text" in call.kwargs else "answer"),
                                                              call, "answer")}, call.source)
    raise ActionError(Reason.UNKNOWN_ACTION, f"`{call.name}` has no counterpart in the action space")


def from_code(code: Any, screen: Screen = None) -> list[Action]:
    """pyautogui / Aguvis code (one or more calls); a moveTo then dragTo is one drag."""
    if not isinstance(code, str) or not code.strip():
        raise ActionError(Reason.MALFORMED_ACTION, f"expected code text, got {code!r}"[:120])
    calls = _calls(code)
    actions: list[Action] = []
    for call in calls:
        if call.name.rpartition(".")[2] == "dragTo":
            end = pixels_or_normalised(call.get(0, "x"), call.get(1, "y"), screen, call.name)
            if not actions or actions[-1].function != Function.MOVE_MOUSE:
                raise ActionError(Reason.MALFORMED_ACTION, f"`{call.source}`: a dragTo without a moveTo before it")
            start = actions.pop()
            actions.append(Action(Function.DRAG, {"from_xy": (start.arguments["x"], start.arguments["y"]), "to_xy": end},
                                  f"{start.raw}\n{call.source}"))
        else:
            actions.append(_code_action(call, screen))
    return actions


# ---------------------------------------------------------------- AITW


AITW_TYPES = {3: "TYPE", 4: "DUAL_POINT", 5: "PRESS_BACK", 6: "PRESS_HOME", 7: "PRESS_ENTER", 10: "COMPLETE", 11: "IMPOSSIBLE"}


def _pair(value: Any, what: str) -> tuple[float, float]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ActionError(Reason.MALFORMED_ACTION, f"{what} is {value!r}, expected [y, x]") from None
    if not (isinstance(value, (list, tuple)) and len(value) == 2):
        raise ActionError(Reason.MALFORMED_ACTION, f"{what} is {value!r}, expected [y, x]")
    return _number(value[0], what), _number(value[1], what)


def from_aitw(step: Any, screen: Screen = None) -> list[Action]:
    """An AITW step: `result_action_type`, `result_touch_yx`, `result_lift_yx` ((y, x), normalised),
    `result_action_text`."""
    if not isinstance(step, dict) or "result_action_type" not in step:
        raise ActionError(Reason.MALFORMED_ACTION, "expected a step with result_action_type")
    raw = json.dumps({k: step.get(k) for k in ("result_action_type", "result_touch_yx", "result_lift_yx", "result_action_text")})
    kind = AITW_TYPES.get(step["result_action_type"])
    if kind is None:
        raise ActionError(Reason.UNKNOWN_ACTION, f"result_action_type {step['result_action_type']!r}")
    if kind == "DUAL_POINT":
        touch_y, touch_x = _pair(step.get("result_touch_yx"), "result_touch_yx")
        lift_y, lift_x = _pair(step.get("result_lift_yx"), "result_lift_yx")
        touch, lift = normalised(touch_x, touch_y, "touch"), normalised(lift_x, lift_y, "lift")
        if math.dist(touch, lift) <= TAP_DISTANCE:
            return [_point_arguments(Function.CLICK, touch, raw)]
        return [Action(Function.SWIPE, {"from_xy": touch, "to_xy": lift}, raw)]
    if kind == "TYPE":
        text = step.get("result_action_text")
        if not isinstance(text, str):
            raise ActionError(Reason.MALFORMED_ACTION, "a TYPE step without result_action_text")
        return [Action(Function.TYPE, {"text": text}, raw)]
    fixed = {"PRESS_BACK": Action(Function.NAVIGATE_BACK, {}, raw), "PRESS_HOME": Action(Function.NAVIGATE_HOME, {}, raw),
             "PRESS_ENTER": Action(Function.PRESS, {"keys": ["enter"]}, raw),
             "COMPLETE": Action(Function.FINAL_ANSWER, {"answer": "complete"}, raw),
             "IMPOSSIBLE": Action(Function.FINAL_ANSWER, {"answer": "impossible"}, raw)}
    return [fixed[kind]]


# ---------------------------------------------------------------- AndroidControl


def from_android_control(action: Any, screen: Screen = None) -> list[Action]:
    """An AndroidControl action: a JSON object (or its text) with `action_type` and its fields."""
    if isinstance(action, str):
        try:
            action = json.loads(action)
        except ValueError:
            raise ActionError(Reason.MALFORMED_ACTION, f"not JSON: {action[:80]!r}") from None
    if not isinstance(action, dict) or "action_type" not in action:
        raise ActionError(Reason.MALFORMED_ACTION, "expected an object with action_type")
    raw, kind = json.dumps(action, sort_keys=True), action["action_type"]

    def field_of(name: str) -> Any:
        if action.get(name) is None:
            raise ActionError(Reason.MALFORMED_ACTION, f"{kind} without `{name}`")
        return action[name]

    if kind in ("click", "long_press"):
        xy = pixels(field_of("x"), field_of("y"), screen, kind)
        return [_point_arguments(Function.CLICK if kind == "click" else Function.LONG_PRESS, xy, raw)]
    if kind == "scroll":
        direction = field_of("direction")
        if direction not in set(Direction):
            raise ActionError(Reason.MALFORMED_ACTION, f"scroll direction {direction!r}")
        return [Action(Function.SCROLL, {"direction": Direction(direction)}, raw)]
    if kind == "input_text":
        return [Action(Function.TYPE, {"text": str(field_of("text"))}, raw)]
    if kind == "open_app":
        return [Action(Function.OPEN_APP, {"app_name": str(field_of("app_name"))}, raw)]
    plain = {"navigate_home": Function.NAVIGATE_HOME, "navigate_back": Function.NAVIGATE_BACK, "wait": Function.WAIT}
    if kind in plain:
        return [Action(plain[kind], {}, raw)]
    raise ActionError(Reason.UNKNOWN_ACTION, f"action_type {kind!r}")


# ---------------------------------------------------------------- GUI-Odyssey


def from_gui_odyssey(step: Any, screen: Screen = None) -> list[Action]:
    """A GUI-Odyssey step: `action` and `info` (points on a 0-1000 scale, or text)."""
    if not isinstance(step, dict) or "action" not in step:
        raise ActionError(Reason.MALFORMED_ACTION, "expected a step with action and info")
    raw, kind, info = json.dumps(step, sort_keys=True), step["action"], step.get("info")

    def points(count: int) -> list[tuple[float, float]]:
        if not (isinstance(info, list) and len(info) == count and all(isinstance(p, list) and len(p) == 2 for p in info)):
            raise ActionError(Reason.MALFORMED_ACTION, f"{kind} info is {info!r}, expected {count} [x, y] point(s)")
        return [normalised(x, y, kind, scale=1000.0) for x, y in info]

    if kind in ("CLICK", "LONG_PRESS"):
        return [_point_arguments(Function.CLICK if kind == "CLICK" else Function.LONG_PRESS, points(1)[0], raw)]
    if kind == "SCROLL":
        (x1, y1), (x2, y2) = points(2)
        if abs(y2 - y1) >= abs(x2 - x1):
            direction = Direction.DOWN if y2 < y1 else Direction.UP
        else:
            direction = Direction.RIGHT if x2 < x1 else Direction.LEFT
        return [Action(Function.SCROLL, {"direction": direction}, raw)]
    if kind == "TEXT":
        if not isinstance(info, str):
            raise ActionError(Reason.MALFORMED_ACTION, f"TEXT info is {info!r}, expected text")
        return [Action(Function.TYPE, {"text": info}, raw)]
    fixed = {"KEY_HOME": Action(Function.NAVIGATE_HOME, {}, raw), "KEY_BACK": Action(Function.NAVIGATE_BACK, {}, raw),
             "KEY_APPSELECT": Action(Function.PRESS, {"keys": ["app_switch"]}, raw),
             "COMPLETE": Action(Function.FINAL_ANSWER, {"answer": "complete"}, raw),
             "INCOMPLETE": Action(Function.FINAL_ANSWER, {"answer": "incomplete"}, raw)}
    if kind in fixed:
        return [fixed[kind]]
    raise ActionError(Reason.UNKNOWN_ACTION, f"action {kind!r}")


# ---------------------------------------------------------------- Mind2Web


def from_mind2web(action: Any, screen: Screen = None) -> list[Action]:
    """A Mind2Web action: `operation` {op, original_op, value} and the target element's `bbox`
    {x, y, width, height} in pixels of the page screenshot (`screen`)."""
    if not isinstance(action, dict) or not isinstance(action.get("operation"), dict):
        raise ActionError(Reason.MALFORMED_ACTION, "expected an action with an operation")
    operation, box = action["operation"], action.get("bbox")
    raw = json.dumps({"operation": operation, "bbox": box}, sort_keys=True)
    op = operation.get("op")
    if op not in ("CLICK", "TYPE", "SELECT"):
        raise ActionError(Reason.UNKNOWN_ACTION, f"operation {op!r}")
    if not isinstance(box, dict) or not all(k in box for k in ("x", "y", "width", "height")):
        raise ActionError(Reason.MALFORMED_ACTION, f"{op} without the target element's bbox")
    centre = pixels(_number(box["x"], "bbox x") + _number(box["width"], "bbox width") / 2,
                    _number(box["y"], "bbox y") + _number(box["height"], "bbox height") / 2, screen, "bbox centre")
    value = operation.get("value") or ""
    if op == "CLICK":
        hover = operation.get("original_op") == "HOVER"
        return [_point_arguments(Function.MOVE_MOUSE if hover else Function.CLICK, centre, raw)]
    if op == "SELECT":
        return [_point_arguments(Function.SELECT, centre, raw, option=value)]
    return [_point_arguments(Function.CLICK, centre, raw), Action(Function.TYPE, {"text": value}, raw)]


CONVERTERS: dict[str, Callable[[Any, Screen], list[Action]]] = {
    "pyautogui": from_code,
    "aguvis": from_code,
    "aitw": from_aitw,
    "android_control": from_android_control,
    "gui_odyssey": from_gui_odyssey,
    "mind2web": from_mind2web,
}
