"""Write alignkit's own small datasets (JSON Lines, TRL conversational format) into datasets/.

    .venv/bin/python tools/make_datasets.py

Pure standard library. Every random choice comes from `random.Random` instances seeded with fixed
strings, and every file is written in a fixed order, so two runs give byte-identical files. The
script overwrites datasets/{sft,preference,unpaired,prompts}/{train,test}.jsonl and the README.md
files next to them; the model configs live in alignkit/configs/ and are not written here.

The questions are ones a 135M instruct model can get better at within a few dozen steps: small
arithmetic, capitals, antonyms, plurals, days and months, counting, letter case, comparing numbers
and unit conversions, each with an explicit answer-format instruction ("Answer with just the
number."). Answers are short and exact, so an exact-match reward can score them. Arithmetic, counts,
conversions, case, days and months are computed here, not typed; the word tables are checked by the
asserts in `check_tables`.

Held-out rule: a prompt in any test file never appears in any train file (of any dataset). For most
tasks the underlying question is held out as well (the pair of numbers, the country, the word, ...);
for the two tasks with tiny domains (days, months) only the exact prompt text is held out.
"""
from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from pathlib import Path

SEED = "alignkit-datasets-v1"
ROOT = Path(__file__).resolve().parent.parent / "datasets"
SIZES = {  # rows per file
    "sft": {"train": 180, "test": 40},
    "preference": {"train": 250, "test": 60},
    "unpaired": {"train": 170, "test": 40},
    "prompts": {"train": 250, "test": 60},
}
TEST_SHARE = 5  # one in TEST_SHARE keys (or prompts) goes to the test pool
WRONG_SHARE = 0.7  # rejected / undesirable completions: share with a wrong answer; the rest ignore the format

# ---------------------------------------------------------------------------------------------------
# Fact tables
# ---------------------------------------------------------------------------------------------------

# country (as it reads inside a sentence) -> capital. Only countries with one undisputed capital
# whose usual English name has no diacritics, so an exact-match reward is fair.
CAPITALS = {
    "France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid", "Portugal": "Lisbon",
    "the United Kingdom": "London", "Ireland": "Dublin", "Belgium": "Brussels", "Austria": "Vienna",
    "Poland": "Warsaw", "the Czech Republic": "Prague", "Hungary": "Budapest", "Greece": "Athens",
    "Sweden": "Stockholm", "Norway": "Oslo", "Denmark": "Copenhagen", "Finland": "Helsinki",
    "Iceland": "Reykjavik", "Russia": "Moscow", "Ukraine": "Kyiv", "Romania": "Bucharest",
    "Bulgaria": "Sofia", "Serbia": "Belgrade", "Croatia": "Zagreb", "Slovakia": "Bratislava",
    "Slovenia": "Ljubljana", "Estonia": "Tallinn", "Latvia": "Riga", "Lithuania": "Vilnius",
    "Turkey": "Ankara", "Egypt": "Cairo", "Kenya": "Nairobi", "Nigeria": "Abuja", "Ghana": "Accra",
    "Ethiopia": "Addis Ababa", "Morocco": "Rabat", "Algeria": "Algiers", "Tunisia": "Tunis",
    "Senegal": "Dakar", "Uganda": "Kampala", "Zimbabwe": "Harare", "Japan": "Tokyo", "China": "Beijing",
    "India": "New Delhi", "South Korea": "Seoul", "Thailand": "Bangkok", "Vietnam": "Hanoi",
    "the Philippines": "Manila", "Pakistan": "Islamabad", "Bangladesh": "Dhaka", "Nepal": "Kathmandu",
    "Afghanistan": "Kabul", "Mongolia": "Ulaanbaatar", "Iran": "Tehran", "Iraq": "Baghdad",
    "Saudi Arabia": "Riyadh", "Qatar": "Doha", "Jordan": "Amman", "Lebanon": "Beirut", "Syria": "Damascus",
    "Australia": "Canberra", "New Zealand": "Wellington", "Canada": "Ottawa", "Mexico": "Mexico City",
    "Argentina": "Buenos Aires", "Chile": "Santiago", "Peru": "Lima", "Ecuador": "Quito",
    "Uruguay": "Montevideo", "Venezuela": "Caracas", "Cuba": "Havana", "Jamaica": "Kingston",
}
# well-known cities that people mistake for the capital (none of them is the capital)
CAPITAL_MISTAKES = {
    "Australia": "Sydney", "Canada": "Toronto", "Turkey": "Istanbul", "India": "Mumbai", "Nigeria": "Lagos",
    "New Zealand": "Auckland", "Morocco": "Casablanca", "Pakistan": "Karachi", "Vietnam": "Ho Chi Minh City",
    "China": "Shanghai", "Russia": "Saint Petersburg", "Spain": "Barcelona", "Italy": "Milan",
    "Germany": "Munich", "Japan": "Osaka", "Ecuador": "Guayaquil", "Egypt": "Alexandria",
    "Saudi Arabia": "Jeddah", "Poland": "Krakow", "Ghana": "Kumasi", "Kenya": "Mombasa",
    "Bangladesh": "Chittagong", "the Philippines": "Cebu", "Ireland": "Cork",
    "Chile": "Valparaiso", "Iraq": "Basra", "Syria": "Aleppo", "Lebanon": "Tripoli", "Ukraine": "Kharkiv",
}

# word -> its one usual antonym (only directions where the answer is not in doubt:
# "small" is missing because both "big" and "large" are right)
ANTONYMS = {
    "hot": "cold", "cold": "hot", "big": "small", "up": "down", "down": "up", "left": "right",
    "day": "night", "night": "day", "black": "white", "white": "black", "yes": "no", "no": "yes",
    "in": "out", "out": "in", "fast": "slow", "slow": "fast", "happy": "sad", "sad": "happy",
    "early": "late", "late": "early", "wet": "dry", "dry": "wet", "young": "old", "new": "old",
    "full": "empty", "empty": "full", "dark": "light", "heavy": "light", "thick": "thin",
    "rich": "poor", "poor": "rich", "win": "lose", "true": "false", "false": "true", "first": "last",
    "last": "first", "inside": "outside", "outside": "inside", "top": "bottom", "bottom": "top",
    "push": "pull", "pull": "push", "buy": "sell", "sell": "buy", "love": "hate", "hate": "love",
    "strong": "weak", "weak": "strong", "loud": "quiet", "clean": "dirty", "dirty": "clean",
    "above": "below", "below": "above", "before": "after", "after": "before", "always": "never",
    "never": "always", "north": "south", "south": "north", "east": "west", "west": "east",
    "summer": "winter", "winter": "summer", "boy": "girl", "girl": "boy", "king": "queen", "queen": "king",
    "friend": "enemy", "enemy": "friend", "asleep": "awake", "awake": "asleep", "alive": "dead",
    "dead": "alive", "cheap": "expensive", "expensive": "cheap", "wide": "narrow", "narrow": "wide",
    "deep": "shallow", "shallow": "deep", "float": "sink", "maximum": "minimum", "minimum": "maximum",
    "plus": "minus", "minus": "plus", "positive": "negative", "negative": "positive", "sunrise": "sunset",
    "sunset": "sunrise", "possible": "impossible", "visible": "invisible", "question": "answer",
    "floor": "ceiling", "remember": "forget", "forget": "remember", "include": "exclude", "increase": "decrease",
    "decrease": "increase", "import": "export", "export": "import", "upstairs": "downstairs",
    "downstairs": "upstairs", "rough": "smooth", "smooth": "rough",
}

# irregular plurals (everything else follows `regular_plural`, checked below)
IRREGULAR_PLURALS = {
    "child": "children", "mouse": "mice", "man": "men", "woman": "women", "tooth": "teeth", "foot": "feet",
    "goose": "geese", "person": "people", "ox": "oxen", "sheep": "sheep", "deer": "deer",
    "knife": "knives", "leaf": "leaves", "wolf": "wolves", "wife": "wives", "life": "lives",
    "half": "halves", "shelf": "shelves", "loaf": "loaves", "calf": "calves", "thief": "thieves",
    "potato": "potatoes", "tomato": "tomatoes", "hero": "heroes", "quiz": "quizzes",
}
REGULAR_NOUNS = [
    "cat", "dog", "book", "apple", "tree", "house", "car", "chair", "bird", "flower", "pencil", "window",
    "table", "horse", "river", "school", "phone", "egg", "door", "bottle", "spoon", "cup", "shoe", "sock",
    "hat", "bag", "star", "cloud", "box", "bus", "church", "dish", "glass", "fox", "watch", "bench",
    "brush", "lunch", "match", "class", "kiss", "tax", "wish", "baby", "city", "lady", "story", "party",
    "puppy", "berry", "cherry", "family", "country", "key", "day", "toy", "boy", "monkey", "valley",
    "piano", "photo", "roof", "chief", "garden", "lamp", "road", "shirt", "train", "coin",
]

DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]

# things to count / words to change the case of: single lowercase words
COUNT_ITEMS = [
    "apple", "pear", "plum", "grape", "lemon", "mango", "peach", "banana", "cherry", "melon", "kiwi",
    "orange", "dog", "cat", "horse", "cow", "goat", "duck", "rabbit", "mouse", "lion", "tiger", "red",
    "blue", "green", "yellow", "purple", "pink", "brown", "pen", "cup", "chair", "lamp", "book", "spoon",
]
CASE_WORDS = sorted(set(COUNT_ITEMS + REGULAR_NOUNS + list(ANTONYMS)) - {"in", "up", "no"})

# (big unit with article, big unit plural, small unit plural, factor, a plausible wrong factor)
UNITS = [
    ("a day", "days", "hours", 24, 12), ("an hour", "hours", "minutes", 60, 100),
    ("a minute", "minutes", "seconds", 60, 100), ("a week", "weeks", "days", 7, 5),
    ("a year", "years", "months", 12, 10), ("a metre", "metres", "centimetres", 100, 10),
    ("a kilometre", "kilometres", "metres", 1000, 100), ("a kilogram", "kilograms", "grams", 1000, 100),
    ("a litre", "litres", "millilitres", 1000, 100), ("a decade", "decades", "years", 10, 12),
    ("a century", "centuries", "years", 100, 1000),
]
NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five"}


def regular_plural(w):
    "The English plural of a regular noun."
    if w.endswith(("s", "x", "z", "ch", "sh")): return w + "es"
    if w.endswith("y") and w[-2] not in "aeiou": return w[:-1] + "ies"
    return w + "s"


def plural(w): return IRREGULAR_PLURALS.get(w) or regular_plural(w)


def check_tables():
    "Programmatic checks of the typed tables."
    assert len(set(CAPITALS.values())) == len(CAPITALS), "two countries share a capital"
    for country, city in CAPITAL_MISTAKES.items():
        assert city not in CAPITALS.values(), f"{city} (mistake for {country}) is a real capital in the table"
    for w, a in ANTONYMS.items():
        assert w != a and w.isalpha() and a.isalpha() and w.islower() and a.islower(), (w, a)
        if a in ANTONYMS: assert ANTONYMS[a] == w, f"{w} -> {a} but {a} -> {ANTONYMS[a]}"
    assert set(CAPITAL_MISTAKES) <= set(CAPITALS)
    assert not set(IRREGULAR_PLURALS) & set(REGULAR_NOUNS)
    for w, p in IRREGULAR_PLURALS.items(): assert p != regular_plural(w), f"{w} is regular"
    assert [plural(w) for w in ("box", "baby", "key", "church", "bus", "day")] == \
        ["boxes", "babies", "keys", "churches", "buses", "days"]
    assert len(set(COUNT_ITEMS)) == len(COUNT_ITEMS) and all(w.isalpha() for w in COUNT_ITEMS)
    for *_, factor, wrong in UNITS: assert factor != wrong


# ---------------------------------------------------------------------------------------------------
# Tasks: each turns a random key into a prompt, an exact answer and plausible bad answers
# ---------------------------------------------------------------------------------------------------

NUM_FMT = ["Answer with just the number.", "Reply with only the number.", "Give only the number.",
           "Respond with the number and nothing else."]
WORD_FMT = ["Reply with one word.", "Answer with a single word.", "Respond with just the word."]
GENERIC_VERBOSE = ["The answer is {ans}.", "Sure! The answer is {ans}.", "{ans}. I hope this helps!",
                   "Great question! It is {ans}.", "Let me think about this. The answer is {ans}."]


class Task:
    "One task. `split_on` is 'key' (hold out whole questions) or 'prompt' (hold out prompt texts)."
    name = ""; split_on = "key"; questions = []; formats = []

    def sample_key(self, rng): raise NotImplementedError
    def fill(self, key): raise NotImplementedError  # -> dict of fields for the templates
    def answer(self, key): raise NotImplementedError
    def wrong(self, key, rng): raise NotImplementedError  # a plausible wrong answer, same format
    def verbose(self, key): return []  # task-specific sentences that contain the right answer

    def prompt(self, key, q, f): return self.questions[q].format(**self.fill(key)) + " " + self.formats[f]

    def bad(self, key, rng):
        "A bad completion: ('wrong', text) with a wrong answer or ('format', text) ignoring the format."
        ans = self.answer(key)
        if rng.random() < WRONG_SHARE:
            w = self.wrong(key, rng)
            assert norm(w) != norm(ans), (self.name, key, w)
            return "wrong", w
        text = rng.choice(self.verbose(key) + [t.format(ans=ans) for t in GENERIC_VERBOSE])
        assert ans in text and text != ans, (self.name, key, text)
        return "format", text


def norm(s): return " ".join(s.strip().strip(".").split())  # case matters (the case task)


def pick(rng, options, avoid):
    "A random option that is not `avoid` (compared normalised)."
    opts = sorted({o for o in options if norm(str(o)) != norm(str(avoid))}, key=str)
    return str(rng.choice(opts))


def no_carry_add(a, b):
    "a + b with every carry forgotten (digit-wise sum mod 10): a classic mistake."
    out, place = 0, 1
    while a or b:
        out += ((a % 10 + b % 10) % 10) * place
        a, b, place = a // 10, b // 10, place * 10
    return out


def smaller_from_larger(a, b):
    "a - b done digit by digit as |x - y| (borrowing forgotten): a classic mistake."
    out, place = 0, 1
    while a or b:
        out += abs(a % 10 - b % 10) * place
        a, b, place = a // 10, b // 10, place * 10
    return out


def digits(rng, n): return rng.randint(0, 9) if n == 1 else rng.randint(10, 99)


class Addition(Task):
    name = "addition"
    questions = ["What is {a} + {b}?", "What is {a} plus {b}?", "Compute {a} + {b}.", "Add {a} and {b}.",
                 "What is the sum of {a} and {b}?", "{a} + {b} = ?", "Calculate {a} + {b}."]
    formats = NUM_FMT

    def sample_key(self, rng):
        na, nb = rng.choice([(1, 1), (1, 2), (2, 1), (2, 2), (2, 2)])
        return (digits(rng, na), digits(rng, nb))
    def fill(self, k): return {"a": k[0], "b": k[1]}
    def answer(self, k): return str(k[0] + k[1])
    def wrong(self, k, rng):
        s = k[0] + k[1]
        return pick(rng, [s + 1, s - 1, s + 10, no_carry_add(*k)] if s > 0 else [1, 2], s)
    def verbose(self, k):
        a, b, s = k[0], k[1], k[0] + k[1]
        return [f"{a} + {b} = {s}.", f"{a} plus {b} equals {s}.", f"The sum of {a} and {b} is {s}."]


class Subtraction(Task):
    name = "subtraction"
    questions = ["What is {a} - {b}?", "What is {a} minus {b}?", "Compute {a} - {b}.",
                 "Subtract {b} from {a}.", "What do you get if you take {b} away from {a}?", "{a} - {b} = ?",
                 "Calculate {a} - {b}."]
    formats = NUM_FMT

    def sample_key(self, rng):
        na, nb = rng.choice([(1, 1), (2, 1), (2, 2), (2, 2)])
        a, b = digits(rng, na), digits(rng, nb)
        return (max(a, b), min(a, b))
    def fill(self, k): return {"a": k[0], "b": k[1]}
    def answer(self, k): return str(k[0] - k[1])
    def wrong(self, k, rng):
        d = k[0] - k[1]
        return pick(rng, [d + 1, d - 1 if d > 0 else d + 2, k[0] + k[1], smaller_from_larger(*k)], d)
    def verbose(self, k):
        a, b, d = k[0], k[1], k[0] - k[1]
        return [f"{a} - {b} = {d}.", f"{a} minus {b} equals {d}.", f"If you take {b} away from {a}, you get {d}."]


class Capital(Task):
    name = "capital"
    questions = ["What is the capital of {c}?", "What is the capital city of {c}?", "Name the capital of {c}.",
                 "Which city is the capital of {c}?", "What city is the capital of {c}?"]
    formats = ["Answer with just the city name.", "Reply with the city name only.",
               "Give only the name of the city."]
    countries = sorted(CAPITALS)

    def sample_key(self, rng): return rng.choice(self.countries)
    def fill(self, k): return {"c": k}
    def answer(self, k): return CAPITALS[k]
    def wrong(self, k, rng):
        if k in CAPITAL_MISTAKES and rng.random() < 0.6: return CAPITAL_MISTAKES[k]
        return pick(rng, CAPITALS.values(), CAPITALS[k])
    def verbose(self, k):
        c = k[0].upper() + k[1:]
        return [f"The capital of {k} is {CAPITALS[k]}.", f"{c}'s capital city is {CAPITALS[k]}."]


class Antonym(Task):
    name = "antonym"
    questions = ["What is the opposite of '{w}'?", "What is the antonym of \"{w}\"?",
                 "Give the opposite of the word '{w}'.", "What word means the opposite of '{w}'?",
                 "Name the opposite of \"{w}\"."]
    formats = WORD_FMT
    words = sorted(ANTONYMS)

    def sample_key(self, rng): return rng.choice(self.words)
    def fill(self, k): return {"w": k}
    def answer(self, k): return ANTONYMS[k]
    def wrong(self, k, rng):
        # the word itself (echoing the question) or the antonym of another word
        return k if rng.random() < 0.35 else pick(rng, ANTONYMS.values(), ANTONYMS[k])
    def verbose(self, k):
        return [f"The opposite of \"{k}\" is \"{ANTONYMS[k]}\".", f"The antonym of {k} is {ANTONYMS[k]}."]


class Plural(Task):
    name = "plural"
    questions = ["What is the plural of '{w}'?", "Write the plural form of \"{w}\".",
                 "What is the plural form of the word '{w}'?", "One {w}, two what?",
                 "Give the plural of the noun '{w}'."]
    formats = WORD_FMT
    words = sorted(REGULAR_NOUNS + list(IRREGULAR_PLURALS))

    def sample_key(self, rng): return rng.choice(self.words)
    def fill(self, k): return {"w": k}
    def answer(self, k): return plural(k)
    def wrong(self, k, rng):
        naive = k + "s"  # the classic over-regularisation: childs, mouses, knifes, babys, boxs, sheeps
        if naive != plural(k) and rng.random() < 0.75: return naive
        return k  # the singular, unchanged
    def verbose(self, k): return [f"The plural of \"{k}\" is \"{plural(k)}\".", f"One {k}, two {plural(k)}."]


class Cycle(Task):
    "Next / previous item of a cycle (days of the week, months of the year)."
    split_on = "prompt"
    items, unit = [], ""
    next_q, prev_q = [], []

    def __init__(self):
        self.questions = self.next_q + self.prev_q
        self.keys = [(d, x) for d in (1, -1) for x in self.items]

    def sample_key(self, rng): return rng.choice(self.keys)
    def prompt(self, k, q, f):
        qs = self.next_q if k[0] == 1 else self.prev_q
        return qs[q % len(qs)].format(x=k[1]) + " " + self.formats[f]
    def answer(self, k):
        i = self.items.index(k[1])
        return self.items[(i + k[0]) % len(self.items)]
    def wrong(self, k, rng):
        i, n = self.items.index(k[1]), len(self.items)
        # the other direction, two steps, or the same item
        return pick(rng, [self.items[(i - k[0]) % n], self.items[(i + 2 * k[0]) % n], k[1]], self.answer(k))
    def verbose(self, k):
        rel = "after" if k[0] == 1 else "before"
        return [f"The {self.unit} {rel} {k[1]} is {self.answer(k)}.", f"It is {self.answer(k)}."]


class NextDay(Cycle):
    name, items, unit = "next_day", DAYS, "day"
    next_q = ["What day comes after {x}?", "What is the day after {x}?", "Which day of the week follows {x}?",
              "If today is {x}, what day is tomorrow?"]
    prev_q = ["What day comes before {x}?", "What is the day before {x}?",
              "Which day of the week comes right before {x}?", "If today is {x}, what day was yesterday?"]
    formats = ["Reply with one word.", "Answer with just the day.", "Give only the name of the day."]


class NextMonth(Cycle):
    name, items, unit = "next_month", MONTHS, "month"
    next_q = ["What month comes after {x}?", "What is the month after {x}?",
              "Which month of the year follows {x}?", "If this month is {x}, what is next month?"]
    prev_q = ["What month comes before {x}?", "What is the month before {x}?",
              "Which month of the year comes right before {x}?", "If this month is {x}, what was last month?"]
    formats = ["Reply with one word.", "Answer with just the month.", "Give only the name of the month."]


class Count(Task):
    name = "count"
    questions = ["How many items are in this list: {l}?", "Count the items in the following list: {l}.",
                 "Here is a list: {l}. How many items does it contain?", "How many words are in this list: {l}?",
                 "How many things are listed here: {l}?"]
    formats = NUM_FMT

    def sample_key(self, rng): return tuple(rng.sample(COUNT_ITEMS, rng.randint(2, 9)))
    def fill(self, k): return {"l": ", ".join(k)}
    def answer(self, k): return str(len(k))
    def wrong(self, k, rng): return pick(rng, [len(k) + 1, len(k) - 1], len(k))
    def verbose(self, k): return [f"There are {len(k)} items in the list.", f"The list contains {len(k)} items."]


class Case(Task):
    name = "case"
    up_q = ["Write the word '{w}' in uppercase letters.", "Convert '{w}' to all capital letters.",
            "Rewrite \"{w}\" in uppercase.", "Write \"{w}\" in all caps."]
    low_q = ["Write the word '{w}' in lowercase letters.", "Convert '{w}' to all small letters.",
             "Rewrite \"{w}\" in lowercase.", "Write \"{w}\" without capital letters."]
    questions = up_q
    formats = ["Reply with just the word.", "Give only the converted word.", "Answer with the word and nothing else."]

    def sample_key(self, rng): return (rng.choice(["upper", "lower"]), rng.choice(CASE_WORDS))
    def prompt(self, k, q, f):
        d, w = k
        return (self.up_q[q].format(w=w) if d == "upper" else self.low_q[q].format(w=w.upper())) + " " + self.formats[f]
    def answer(self, k): return k[1].upper() if k[0] == "upper" else k[1].lower()
    def wrong(self, k, rng):
        d, w = k
        # unchanged input, only the first letter changed, or the wrong direction
        return pick(rng, [w, w.capitalize()] if d == "upper" else [w.upper(), w.capitalize()], self.answer(k))
    def verbose(self, k):
        return [f"In {k[0]}case, the word is {self.answer(k)}.", f"Here it is: {self.answer(k)}"]


class Compare(Task):
    name = "compare"
    big_q = ["Which is larger, {a} or {b}?", "Which number is bigger: {a} or {b}?",
             "What is the larger of {a} and {b}?", "Which is greater, {a} or {b}?"]
    small_q = ["Which is smaller, {a} or {b}?", "Which number is less: {a} or {b}?",
               "What is the smaller of {a} and {b}?", "Which is lower, {a} or {b}?"]
    questions = big_q
    formats = NUM_FMT

    def sample_key(self, rng):
        kind = rng.choice(["max", "min"])
        if rng.random() < 0.35:  # the same two digits swapped: 41 or 14
            x, y = rng.sample(range(1, 10), 2)
            a, b = 10 * x + y, 10 * y + x
        else:
            a, b = rng.sample(range(1, 100), 2)
        return (kind, a, b)
    def prompt(self, k, q, f):
        qs = self.big_q if k[0] == "max" else self.small_q
        return qs[q].format(a=k[1], b=k[2]) + " " + self.formats[f]
    def answer(self, k): return str(max(k[1:]) if k[0] == "max" else min(k[1:]))
    def wrong(self, k, rng): return str(min(k[1:]) if k[0] == "max" else max(k[1:]))
    def verbose(self, k):
        rel = "larger" if k[0] == "max" else "smaller"
        return [f"{self.answer(k)} is {rel}.", f"The {rel} number is {self.answer(k)}."]


class Units(Task):
    name = "units"
    questions = ["How many {small} are in {qty}?", "How many {small} are there in {qty}?",
                 "Convert {qty} to {small}.", "How many {small} make up {qty}?"]
    formats = NUM_FMT
    keys = [(u, n) for u in range(len(UNITS)) for n in range(1, 6)]

    def sample_key(self, rng): return rng.choice(self.keys)
    def fill(self, k):
        one, many, small, *_ = UNITS[k[0]]
        return {"small": small, "qty": one if k[1] == 1 else f"{NUMBER_WORDS[k[1]]} {many}"}
    def answer(self, k): return str(UNITS[k[0]][3] * k[1])
    def wrong(self, k, rng):
        factor, bad, n = UNITS[k[0]][3], UNITS[k[0]][4], k[1]
        return pick(rng, [bad * n] + ([factor] if n > 1 else [factor // 10 if factor >= 100 else factor + 1]),
                    factor * n)
    def verbose(self, k):
        f = self.fill(k)
        return [f"There are {self.answer(k)} {f['small']} in {f['qty']}.", f"{f['qty'][0].upper()}{f['qty'][1:]} "
                f"{'is' if k[1] == 1 else 'are'} {self.answer(k)} {f['small']}."]


TASKS = [Addition(), Subtraction(), Capital(), Antonym(), Plural(), NextDay(), NextMonth(), Count(), Case(),
         Compare(), Units()]

# ---------------------------------------------------------------------------------------------------
# Splitting and drawing rows
# ---------------------------------------------------------------------------------------------------


def stable_hash(x): return int(hashlib.sha256(repr(x).encode()).hexdigest(), 16)


def split_of(task, key, prompt):
    "'test' or 'train', a fixed function of the key (or of the prompt text for tiny-domain tasks)."
    h = stable_hash((task.name, key if task.split_on == "key" else prompt))
    return "test" if h % TEST_SHARE == 0 else "train"


def n_templates(task):
    qs = len(task.next_q) if isinstance(task, Cycle) else len(task.questions)
    return qs, len(task.formats)


def draw(task, split, n, rng):
    "n items (key, prompt) of `task` in `split`, no prompt twice, fresh keys first."
    nq, nf = n_templates(task)
    out, prompts, keys = [], set(), set()
    for tries in range(200_000):
        if len(out) == n: return out
        key = task.sample_key(rng)
        p = task.prompt(key, rng.randrange(nq), rng.randrange(nf))
        if split_of(task, key, p) != split or p in prompts: continue
        if key in keys and tries < 20_000: continue  # reuse a key (other phrasing) only when keys run out
        out.append((key, p)); prompts.add(p); keys.add(key)
    raise RuntimeError(f"could not draw {n} {split} items for task {task.name}")


def per_task(n, rng):
    "Split n rows over the tasks as evenly as possible; which tasks get the remainder is random."
    order = list(range(len(TASKS)))
    rng.shuffle(order)
    counts = [n // len(TASKS)] * len(TASKS)
    for i in order[: n % len(TASKS)]: counts[i] += 1
    return counts


def user(text): return [{"role": "user", "content": text}]
def assistant(text): return [{"role": "assistant", "content": text}]


def build(kind, split):
    "Rows of one file, plus stats on the bad completions."
    rng = random.Random(f"{SEED}:{kind}:{split}")
    n = SIZES[kind][split]
    rows, bad_kinds = [], Counter()
    labels = None
    if kind == "unpaired":
        labels = [True] * ((n + 1) // 2) + [False] * (n // 2)
        rng.shuffle(labels)
    for task, m in zip(TASKS, per_task(n, rng)):
        for key, p in draw(task, split, m, rng):
            ans = task.answer(key)
            if kind == "sft":
                rows.append({"messages": user(p) + assistant(ans), "task": task.name})
            elif kind == "preference":
                bk, bad = task.bad(key, rng)
                bad_kinds[bk] += 1
                rows.append({"prompt": user(p), "chosen": assistant(ans), "rejected": assistant(bad),
                             "task": task.name})
            elif kind == "unpaired":
                rows.append({"prompt": user(p), "completion": None, "label": None, "task": task.name,
                             "_key": key})
            else:
                rows.append({"prompt": user(p), "answer": ans, "task": task.name})
    rng.shuffle(rows)
    if kind == "unpaired":
        task_by_name = {t.name: t for t in TASKS}
        for row, lab in zip(rows, labels):
            t, key = task_by_name[row["task"]], row.pop("_key")
            if lab: text = t.answer(key)
            else:
                bk, text = t.bad(key, rng)
                bad_kinds[bk] += 1
            row["completion"], row["label"] = assistant(text), lab
    return rows, bad_kinds


def prompt_text(row): return row["messages"][0]["content"] if "messages" in row else row["prompt"][0]["content"]


def write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for r in rows: f.write(json.dumps(r, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------------------------------------------
# READMEs
# ---------------------------------------------------------------------------------------------------

DESCRIPTIONS = {
    "sft": ("Supervised fine-tuning (SFT)",
            "Single-turn chats: a user question with an explicit answer-format instruction and the exact, "
            "short assistant answer. For `SFTTrainer` (conversational format, `messages` column).",
            "`messages`: `[{role: user}, {role: assistant}]`; `task`: task name."),
    "preference": ("Preference pairs (DPO, IPO, ORPO, SimPO, reward models)",
                   "A prompt with a chosen and a rejected answer. The chosen answer is the exact right answer; "
                   "the rejected one is checkably worse: either a plausible wrong answer in the right format "
                   "(off by one, a forgotten carry, the wrong capital, an over-regularised plural, the other "
                   "number) or the right answer wrapped in a sentence that ignores the format instruction. "
                   "For `DPOTrainer` / `RewardTrainer` (explicit-prompt conversational preference format).",
                   "`prompt`: `[{role: user}]`; `chosen`, `rejected`: `[{role: assistant}]`; `task`."),
    "unpaired": ("Unpaired preference (KTO)",
                 "A prompt and one completion with a binary label: `true` when the completion is exactly the "
                 "right answer, `false` when it is a plausible wrong answer or ignores the format. Labels are "
                 "balanced. For `KTOTrainer` (conversational unpaired preference format).",
                 "`prompt`: `[{role: user}]`; `completion`: `[{role: assistant}]`; `label`: bool; `task`."),
    "prompts": ("Prompts with verifiable answers (GRPO, RLOO, PPO)",
                "A prompt and the exact short answer as a string, for online RL with an exact-match (or "
                "normalised-match) reward. For `GRPOTrainer` / `RLOOTrainer` (conversational prompt-only format; "
                "the extra `answer` column is passed to reward functions).",
                "`prompt`: `[{role: user}]`; `answer`: string; `task`."),
}
TASK_NOTES = {
    "addition": "a + b with one- and two-digit numbers",
    "subtraction": "a - b with a >= b (one- and two-digit), never negative",
    "capital": f"capital city of one of {len(CAPITALS)} well-known countries",
    "antonym": "the usual opposite of a common word",
    "plural": "plural of a regular or irregular noun",
    "next_day": "day of the week after / before a given day",
    "next_month": "month after / before a given month",
    "count": "number of items (2-9) in a comma-separated list",
    "case": "a word in upper or lower case",
    "compare": "the larger / smaller of two numbers (often the same digits swapped)",
    "units": "unit conversions (hours in a day, grams in two kilograms, ...)",
}


def readme(kind, files, stats):
    title, what, schema = DESCRIPTIONS[kind]
    tr, te = files["train"], files["test"]
    ct = {s: Counter(r["task"] for r in files[s]) for s in files}
    lines = [f"# {title}", "", what, "", "## Schema", "", schema, "", "One row of `train.jsonl`:", "", "```json",
             json.dumps(tr[0], ensure_ascii=False, indent=2), "```", "", "## How it was made", "",
             "Generated by `tools/make_datasets.py` (Python standard library, fixed seed, byte-identical on every "
             "run); from the repository root:", "", "```bash", ".venv/bin/python tools/make_datasets.py", "```", "",
             "Answers are computed (arithmetic, counts, conversions, case, days, months) or read from tables in the "
             "script that it checks with asserts (capitals, antonyms, plurals). Every prompt carries an "
             "answer-format instruction (\"Answer with just the number.\", \"Reply with one word.\", ...) and every "
             "right answer is that short exact string. Several phrasings per task.", "",
             "Train and test never share a prompt (across all four datasets: no test prompt appears in any train "
             "file). For all tasks except `next_day` and `next_month` the underlying question (the numbers, the "
             "country, the word, the list) is held out too.", "", "## Rows", "",
             f"| file | rows |", "|---|---|", f"| train.jsonl | {len(tr)} |", f"| test.jsonl | {len(te)} |", ""]
    if kind == "unpaired":
        for s in ("train", "test"):
            c = Counter(r["label"] for r in files[s])
            lines.append(f"Labels in {s}: {c[True]} true, {c[False]} false.")
        lines.append("")
    if stats:
        for s in ("train", "test"):
            c = stats[s]
            what_bad = "rejected answers" if kind == "preference" else "false-labelled completions"
            lines.append(f"{what_bad.capitalize()} in {s}: {c['wrong']} with a wrong answer, "
                         f"{c['format']} with the right answer that ignores the format.")
        lines.append("")
    lines += ["## Task mix", "", "| task | what | train | test |", "|---|---|---|---|"]
    lines += [f"| {t.name} | {TASK_NOTES[t.name]} | {ct['train'][t.name]} | {ct['test'][t.name]} |" for t in TASKS]
    lines += ["", "## Licence", "", "CC0-1.0 (public domain dedication). Generated by the alignkit project; "
              "no third-party text.", ""]
    return "\n".join(lines)


TOP_README = """# alignkit datasets

Small datasets written by this project for its examples and tests: single-turn questions a 135M instruct
model (SmolLM2-135M-Instruct) can measurably get better at within a few dozen CPU training steps. JSON Lines,
UTF-8, TRL's conversational formats, each with a `train.jsonl` / `test.jsonl` split and a README.

| folder | for | rows (train / test) |
|---|---|---|
{rows}
| [mc/](mc/README.md) | multiple choice (`ak.multiple_choice`): `question`, 4 `choices`, `answer` index, `subject` | – / 50 |

All four are generated by `.venv/bin/python tools/make_datasets.py` (deterministic; it rewrites the JSONL files
and these READMEs); `mc/` by `.venv/bin/python tools/make_mc.py`. No test prompt appears in any train file. Licence: CC0-1.0, generated by this project.
"""
ONE_LINE = {
    "sft": "SFT: `messages` (user question, exact short assistant answer)",
    "preference": "DPO family / reward models: `prompt`, `chosen` (right), `rejected` (wrong or ignores the format)",
    "unpaired": "KTO: `prompt`, `completion`, `label` (true = right answer in the right format)",
    "prompts": "GRPO / RLOO / PPO: `prompt` and the verifiable `answer` string for an exact-match reward",
}


def main():
    check_tables()
    data, stats = {}, {}
    for kind in SIZES:
        data[kind], stats[kind] = {}, {}
        for split in ("train", "test"):
            data[kind][split], stats[kind][split] = build(kind, split)
    # held-out checks: no prompt twice in a file, no test prompt in any train file
    train_prompts = {prompt_text(r) for k in data for r in data[k]["train"]}
    for kind in data:
        for split, rows in data[kind].items():
            ps = [prompt_text(r) for r in rows]
            assert len(ps) == len(set(ps)), f"{kind}/{split}: duplicate prompt"
            assert len(rows) == SIZES[kind][split]
            if split == "test": assert not set(ps) & train_prompts, f"{kind}/test shares a prompt with a train file"
    for kind in data:
        for split, rows in data[kind].items(): write_jsonl(ROOT / kind / f"{split}.jsonl", rows)
        s = stats[kind] if kind in ("preference", "unpaired") else None
        (ROOT / kind / "README.md").write_text(readme(kind, data[kind], s), encoding="utf-8", newline="\n")
    rows = "\n".join(f"| [{k}/]({k}/README.md) | {ONE_LINE[k]} | {SIZES[k]['train']} / {SIZES[k]['test']} |"
                     for k in SIZES)
    (ROOT / "README.md").write_text(TOP_README.format(rows=rows), encoding="utf-8", newline="\n")
    for kind in data:
        for split, rows in data[kind].items():
            print(f"datasets/{kind}/{split}.jsonl: {len(rows)} rows")


if __name__ == "__main__":
    main()
