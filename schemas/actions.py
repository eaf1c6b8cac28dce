"""The one GUI action space every agent dataset is rewritten into (FineVision's GUI subsets,
smol2operator's published functions, with their inconsistencies fixed).

Coordinates are floats in [0, 1] of the screenshot's width and height. A converted action is
stored structured (function + typed arguments: ACTION) and as its canonical string
(`click(x=0.8102, y=0.9463)`), with the raw action kept for lineage.
"""

from enum import StrEnum

from pyspark.sql.types import ArrayType, DoubleType, StringType, StructField, StructType


class Function(StrEnum):
    CLICK = "click"
    DOUBLE_CLICK = "double_click"
    RIGHT_CLICK = "right_click"
    LONG_PRESS = "long_press"
    MOVE_MOUSE = "move_mouse"
    DRAG = "drag"
    SWIPE = "swipe"
    SCROLL = "scroll"
    TYPE = "type"
    PRESS = "press"
    OPEN_APP = "open_app"
    NAVIGATE_BACK = "navigate_back"
    NAVIGATE_HOME = "navigate_home"
    WAIT = "wait"
    FINAL_ANSWER = "final_answer"
    SELECT = "select"  # a web <select>: the option chosen at (x, y)


class Direction(StrEnum):
    UP = "up"
    DOWN = "down"
    LEFT = "left"
    RIGHT = "right"


# Each function's arguments in canonical order, with their kinds: point (two floats in [0, 1]),
# text, keys (a list of key names), number. Arguments in OPTIONAL may be absent (the format
# does not say: AndroidControl's scroll has no amount, its wait no duration).
ARGUMENTS: dict[Function, tuple[tuple[str, str], ...]] = {
    Function.CLICK: (("x", "coordinate"), ("y", "coordinate")),
    Function.DOUBLE_CLICK: (("x", "coordinate"), ("y", "coordinate")),
    Function.RIGHT_CLICK: (("x", "coordinate"), ("y", "coordinate")),
    Function.LONG_PRESS: (("x", "coordinate"), ("y", "coordinate")),
    Function.MOVE_MOUSE: (("x", "coordinate"), ("y", "coordinate")),
    Function.DRAG: (("from_xy", "point"), ("to_xy", "point")),
    Function.SWIPE: (("from_xy", "point"), ("to_xy", "point")),
    Function.SCROLL: (("direction", "direction"), ("amount", "number")),
    Function.TYPE: (("text", "text"),),
    Function.PRESS: (("keys", "keys"),),
    Function.OPEN_APP: (("app_name", "text"),),
    Function.NAVIGATE_BACK: (),
    Function.NAVIGATE_HOME: (),
    Function.WAIT: (("seconds", "number"),),
    Function.FINAL_ANSWER: (("answer", "text"),),
    Function.SELECT: (("x", "coordinate"), ("y", "coordinate"), ("option", "text")),
}
OPTIONAL = {(Function.SCROLL, "amount"), (Function.WAIT, "seconds")}

# One converted action (nested in array columns, where Delta enforces no NOT NULL: the suite
# checks function, canonical and raw instead). Points are (x, y) then (to_x, to_y) for drag and swipe; `text` holds
# type's text, open_app's app_name, final_answer's answer and select's option.
ACTION = StructType([
    StructField("function", StringType(), True),
    StructField("x", DoubleType(), True),
    StructField("y", DoubleType(), True),
    StructField("to_x", DoubleType(), True),
    StructField("to_y", DoubleType(), True),
    StructField("direction", StringType(), True),
    StructField("amount", DoubleType(), True),
    StructField("text", StringType(), True),
    StructField("keys", ArrayType(StringType(), True), True),
    StructField("seconds", DoubleType(), True),
    StructField("canonical", StringType(), True),  # e.g. click(x=0.8102, y=0.9463)
    StructField("raw", StringType(), True),  # the dataset's action as read (lineage)
])
