"""Write datasets/mc/test.jsonl: small MMLU-style multiple-choice items (4 choices, one right) for `ak.multiple_choice`.

Python standard library only, fixed seed, byte-identical on every run. From the repository root:

    .venv/bin/python tools/make_mc.py

Arithmetic and unit answers are computed; geography, grammar and science answers come from the tables below, checked by
asserts. Each item's three wrong choices are plausible (a near number, another country's capital, the over-regularised
form) and never equal the right one; the right answer's position cycles through the four slots."""
import json, random
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "datasets" / "mc" / "test.jsonl"
PER_SUBJECT = 10

CAPITALS = [("France", "Paris"), ("Japan", "Tokyo"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Germany", "Berlin"),
            ("Canada", "Ottawa"), ("Australia", "Canberra"), ("Egypt", "Cairo"), ("Kenya", "Nairobi"), ("Peru", "Lima"),
            ("Norway", "Oslo"), ("Portugal", "Lisbon"), ("Greece", "Athens"), ("Turkey", "Ankara"), ("Brazil", "Brasilia")]
CONTINENTS = [("Brazil", "South America"), ("Kenya", "Africa"), ("Japan", "Asia"), ("Norway", "Europe"),
              ("Canada", "North America")]
PLURALS = [("child", "children", ["childs", "childes", "childrens"]), ("mouse", "mice", ["mouses", "mices", "meese"]),
           ("foot", "feet", ["foots", "feets", "footes"]), ("tooth", "teeth", ["tooths", "teeths", "toothes"]),
           ("goose", "geese", ["gooses", "geeses", "goosen"]), ("man", "men", ["mans", "mens", "manes"])]
PAST = [("go", "went", ["goed", "gone", "wented"]), ("eat", "ate", ["eated", "eaten", "ated"]),
        ("run", "ran", ["runned", "runs", "rand"]), ("see", "saw", ["seed", "seen", "sawed"])]
SCIENCE = [("What is the chemical symbol for gold?", "Au", ["Ag", "Go", "Gd"]),
           ("What is the chemical symbol for sodium?", "Na", ["So", "Sd", "N"]),
           ("Which planet is closest to the Sun?", "Mercury", ["Venus", "Mars", "Earth"]),
           ("Which planet is the largest in the Solar System?", "Jupiter", ["Saturn", "Earth", "Neptune"]),
           ("What gas do plants take in for photosynthesis?", "carbon dioxide", ["oxygen", "nitrogen", "helium"]),
           ("At sea level, water boils at how many degrees Celsius?", "100", ["90", "50", "212"]),
           ("How many legs does an insect have?", "6", ["8", "4", "10"]),
           ("What is the hardest natural substance?", "diamond", ["iron", "quartz", "granite"]),
           ("Which organ pumps blood around the human body?", "heart", ["lungs", "liver", "kidneys"]),
           ("What is H2O commonly called?", "water", ["salt", "hydrogen", "air"])]
UNITS = [("centimetres", "metre", 100), ("millimetres", "metre", 1000), ("grams", "kilogram", 1000),
         ("minutes", "hour", 60), ("seconds", "minute", 60), ("hours", "day", 24), ("days", "week", 7),
         ("months", "year", 12), ("metres", "kilometre", 1000), ("millilitres", "litre", 1000)]

# the tables are what the answers rest on: check them
assert len({c for c, _ in CAPITALS}) == len(CAPITALS) and len({k for _, k in CAPITALS}) == len(CAPITALS)
assert dict(CAPITALS)["Australia"] == "Canberra" and dict(CAPITALS)["Canada"] == "Ottawa"
for _, right, wrong in PLURALS + PAST + SCIENCE: assert right not in wrong and len(set(wrong)) == 3

def _numbers(right:int, rng) -> list[int]:
    "Three wrong numbers near `right`: off by one, off by ten, a forgotten carry."
    cands = [right + d for d in (1, -1, 10, -10, 2, -2, 100)] + [right * 10]
    cands = [c for c in dict.fromkeys(cands) if c >= 0 and c != right]
    return rng.sample(cands, 3)

def arithmetic(rng):
    for i in range(PER_SUBJECT):
        op = "+-*"[i % 3]
        a, b = (rng.randint(12, 89), rng.randint(12, 89)) if op != "*" else (rng.randint(3, 12), rng.randint(3, 12))
        if op == "-": a, b = max(a, b), min(a, b)
        right = a + b if op == "+" else a - b if op == "-" else a * b
        yield f"What is {a} {'×' if op == '*' else op} {b}?", str(right), [str(x) for x in _numbers(right, rng)]

def geography(rng):
    for country, city in rng.sample(CAPITALS, PER_SUBJECT - len(CONTINENTS)):
        yield f"What is the capital of {country}?", city, rng.sample([k for _, k in CAPITALS if k != city], 3)
    names = sorted({k for _, k in CONTINENTS} | {"Oceania", "Antarctica"})
    for country, continent in CONTINENTS:
        yield f"On which continent is {country}?", continent, rng.sample([n for n in names if n != continent], 3)

def units(rng):
    for small, big, k in UNITS:
        n = rng.randint(2, 5)
        right = n * k
        yield f"How many {small} are in {n} {big}s?", str(right), [str(x) for x in _numbers(right, rng)]

def grammar(rng):
    for word, right, wrong in PLURALS:
        yield f"What is the plural of \"{word}\"?", right, wrong
    for word, right, wrong in PAST:
        yield f"What is the simple past tense of \"{word}\"?", right, wrong

def science(rng):
    yield from SCIENCE

SUBJECTS = {"arithmetic": arithmetic, "geography": geography, "units": units, "grammar": grammar, "science": science}

def items(seed:int=0) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for subject, make in SUBJECTS.items():
        for question, right, wrong in make(rng):
            assert right not in wrong and len(set(wrong)) == 3, (question, right, wrong)
            choices = rng.sample(wrong, 3)
            choices.insert(len(rows) % 4, right)          # the right answer cycles through A-D: each position 1/4 of items
            rows.append({"question": question, "choices": choices, "answer": choices.index(right), "subject": subject})
    assert len({r["question"] for r in rows}) == len(rows)
    return rows

if __name__ == "__main__":
    rows = items()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"{OUT.relative_to(OUT.parents[2])}: {len(rows)} items")
