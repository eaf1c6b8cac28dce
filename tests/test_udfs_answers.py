"""The rule-based answer checker (udfs/answers.py): unit cases, and TabMWP's gold solutions."""

import json

import pytest

from tests.conftest import SHARED_DATA, needs_shared_data
from udfs.answers import CORRECT, INCORRECT, NEEDS_JUDGE, check_answer, parse_number


@pytest.mark.parametrize(("text", "gold", "choices", "verdict"), [
    ("<think>7 x 12 = 84, minus 2</think>The answer is \\boxed{82}.", "82", None, CORRECT),
    ("<think>the total is 80</think>Answer: 81", "80", None, INCORRECT),
    ("Erik will have $4,656.00 left.", "4,656", None, CORRECT),
    ("The rate of change between 2010 and 2011 was - 7 games per year.", "-7", None, CORRECT),
    ("2 offices are exactly 38 square meters.", "2", None, CORRECT),
    ("In 2004, peas cost $7 per cwt.", "7", None, CORRECT),
    ("So 3/4 of the class voted.", "0.75", None, CORRECT),
    ("The share is \\frac{69}{127}.", "69/127", None, CORRECT),
    ("About 45% of them agreed.", "0.45", None, CORRECT),
    ("He ran 1 1/2 miles.", "1.5", None, CORRECT),
    ("The mean is 8.333.", "8.33", None, CORRECT),
    ("The mean is 8.4.", "8.33", None, INCORRECT),
    ("So, there is a shortage.", "shortage", ["shortage", "surplus"], CORRECT),
    ("The organization is Dreaming Green.", "Dreaming Green", ["Green", "Dreaming Green"], CORRECT),
    ("Winchester: 5:25 P. M.", "5:25 P.M.", ["8:55 P.M.", "5:25 P.M."], CORRECT),
    ("I pick (B).", "surplus", ["shortage", "surplus"], CORRECT),
    ("Roxanne does have enough money.", "yes", ["yes", "no"], CORRECT),
    ("Roxanne does not have enough money.", "yes", ["yes", "no"], INCORRECT),
    ("No, it won't fit.", "no", None, CORRECT),
    ("The picture shows a red barn at dusk.", "a barn", None, NEEDS_JUDGE),
])
def test_check_answer(text, gold, choices, verdict):
    assert check_answer(text, gold, choices).verdict == verdict


def test_no_answer_in_the_text_is_incorrect_with_a_reason():
    check = check_answer("I could not work it out.", "12")
    assert (check.verdict, check.reason, check.found) == (INCORRECT, "no_number_found", None)
    assert check_answer("None of these.", "surplus", ["shortage", "surplus"]).reason == "no_choice_found"


def test_gold_numbers_parse():
    assert [parse_number(x) for x in ("1,807.80", "$5", "69/127", "-3", "45%", "five")] == [
        1807.8, 5.0, 69 / 127, -3.0, 45.0, None]


def wrong_answer(problem: dict) -> str:
    """Another choice, or the gold number plus one written like the gold."""
    if problem["choices"]:
        return next(c for c in problem["choices"] if c != problem["answer"])
    gold = problem["answer"]
    if "/" in gold:
        numerator, denominator = gold.split("/")
        return f"{int(numerator) + 1}/{denominator}"
    decimals = len(gold.split(".")[1]) if "." in gold else 0
    return f"{parse_number(gold) + 1:,.{decimals}f}"


@needs_shared_data("tabmwp")
def test_gold_solutions_of_tabmwp_are_accepted_and_wrong_answers_rejected():
    problems = json.loads((SHARED_DATA / "tabmwp" / "problems_test1k.json").read_text())
    accepted = [check_answer(p["solution"], p["answer"], p["choices"]).verdict == CORRECT for p in problems.values()]
    rejected = [check_answer(p["solution"], wrong_answer(p), p["choices"]).verdict == INCORRECT
                for p in problems.values()]
    print(f"TabMWP test1k: gold accepted {sum(accepted)}/{len(accepted)}, wrong rejected {sum(rejected)}/{len(rejected)}")
    assert sum(accepted) >= 0.99 * len(problems)
    assert sum(rejected) >= 0.99 * len(problems)
