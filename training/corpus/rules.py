"""The rules of the built-in grammar: sentence templates, dialogue follow-ups, document lengths and types, and
`ChoiceTable`, the distribution every random decision of the grammar is drawn from (`TABLES`, by name)."""

from __future__ import annotations

import bisect
import functools
import math
import random
import string
from collections.abc import Iterable
from dataclasses import dataclass

from wenlm.training.corpus.vocabulary import (
    ACTIVITIES,
    COUNTABLES,
    NAMES,
    SIMPLE_WORDS,
    field_kind,
    render_value,
    table_rows,
)


class ChoiceTable:
    """A finite distribution over hashable options, normalised from positive weights."""

    __slots__ = ("name", "options", "probs", "_cumulative", "_logprobs")

    def __init__(self, name: str, weighted: Iterable[tuple[object, float]]):
        pairs = list(weighted)
        if not pairs:
            raise ValueError(f"choice table {name!r} has no options")
        if any(weight <= 0 for _, weight in pairs):
            raise ValueError(f"choice table {name!r} has a non-positive weight")
        options = tuple(option for option, _ in pairs)
        if len(set(options)) != len(options):
            raise ValueError(f"choice table {name!r} lists an option twice")
        total = math.fsum(weight for _, weight in pairs)
        self.name = name
        self.options = options
        self.probs = tuple(weight / total for _, weight in pairs)
        running = 0.0
        cumulative = []
        for prob in self.probs:
            running += prob
            cumulative.append(running)
        # rng.random() < 1.0, so pinning the last bound to 1.0 makes the final option reachable
        # whatever rounding the running sum accumulated.
        cumulative[-1] = 1.0
        self._cumulative = cumulative
        self._logprobs = {option: math.log(prob) for option, prob in zip(options, self.probs)}

    def sample(self, rng: random.Random) -> tuple[object, float]:
        index = bisect.bisect_right(self._cumulative, rng.random())
        option = self.options[min(index, len(self.options) - 1)]
        return option, self._logprobs[option]

    def logprob(self, option: object) -> float:
        try:
            return self._logprobs[option]
        except KeyError:
            raise ValueError(f"{option!r} is not an option of choice table {self.name!r}") from None

    def entropy(self) -> float:
        """Entropy in nats."""
        return -math.fsum(p * math.log(p) for p in self.probs)

    def __repr__(self) -> str:
        return f"ChoiceTable({self.name!r}, {len(self.options)} options)"


def _zipf(items: Iterable[object], exponent: float = 0.8, offset: float = 3.0) -> list[tuple[object, float]]:
    """Word frequencies that fall off with rank, so a model has frequent and rare words to learn."""
    return [(item, 1.0 / (rank + offset) ** exponent) for rank, item in enumerate(items)]


def _uniform(items: Iterable[object]) -> list[tuple[object, float]]:
    return [(item, 1.0) for item in items]


# Templates. Each is one sentence with an English and a Chinese rendering over the same fields, written as
# rows `id | weight | English | Chinese`.


@dataclass(frozen=True)
class Template:
    id: str
    role: str
    weight: float
    patterns: dict  # lang -> tuple of literal str | (field, spec)
    fields: tuple  # distinct field names, in English order
    literals: dict  # lang -> the literal pieces, for a cheap rejection before a full match

    def render(self, lang: str, values: dict) -> str:
        parts = []
        for element in self.patterns[lang]:
            if isinstance(element, str):
                parts.append(element)
            else:
                name, spec = element
                parts.append(render_value(field_kind(name), spec, lang, values[name]))
        return "".join(parts)


def _compile(fmt: str) -> tuple:
    elements = []
    for literal, name, spec, _ in string.Formatter().parse(fmt):
        if literal:
            elements.append(literal)
        if name is not None:
            elements.append((name, spec or ""))
    return tuple(elements)


def _templates(role: str, block: str) -> tuple[Template, ...]:
    built = []
    for template_id, weight, english, chinese in table_rows(block, 4):
        weight = float(weight)
        patterns = {"en": _compile(english), "zh": _compile(chinese)}
        fields_by_lang = {
            lang: [e[0] for e in pattern if not isinstance(e, str)] for lang, pattern in patterns.items()
        }
        if set(fields_by_lang["en"]) != set(fields_by_lang["zh"]):
            raise ValueError(f"template {template_id}: English and Chinese use different fields")
        for lang, names in fields_by_lang.items():
            # The parser derives Y from X; it needs X first.
            if "Y" in names and "X" in names and names.index("Y") < names.index("X"):
                raise ValueError(f"template {template_id} ({lang}): Y must come after X")
            if len(set(names)) != len(names):
                raise ValueError(f"template {template_id} ({lang}): a field appears twice")
        literals = {
            lang: tuple(e for e in pattern if isinstance(e, str)) for lang, pattern in patterns.items()
        }
        built.append(
            Template(
                template_id, role, weight, patterns, tuple(dict.fromkeys(fields_by_lang["en"])), literals
            )
        )
    return tuple(built)


_OPENINGS = _templates(
    "opening",
    """
    went    | 3.0 | One {weather} {time}, {A} and {B} went to the {place}.    | 一个{weather}的{time}，{A}和{B}去了{place}。
    met     | 2.0 | It was a {weather} {time}. {A} met {B} at the {place}.    | 那是一个{weather}的{time}。{A}在{place}遇到了{B}。
    visited | 1.5 | On a {weather} {time}, {A} visited {B} at the {place}.    | 在一个{weather}的{time}，{A}去{place}看望{B}。
    played  | 1.0 | On a {weather} {time}, {A} and {B} played at the {place}. | 在一个{weather}的{time}，{A}和{B}在{place}玩耍。
    """,
)

_BODIES = _templates(
    "body",
    """
    found       | 3.0 | {X} found {count_obj} under a tree.              | {X}在树下找到了{count_obj}。
    gave        | 3.0 | {X} gave {Y} {color_obj}.                        | {X}送给{Y}{color_obj}。
    saw         | 3.0 | {X} saw {count_animal} near the {place}.         | {X}在{place}附近看到了{count_animal}。
    wanted_food | 2.5 | {X} wanted to eat {food}.                        | {X}想吃{food}。
    ate         | 2.5 | {X} and {Y} ate {food} together.                 | {X}和{Y}一起吃了{food}。
    bought      | 2.0 | {X} bought {count_obj} for {Y}.                  | {X}给{Y}买了{count_obj}。
    felt        | 2.0 | {X} felt {feeling}.                              | {X}觉得很{feeling}。
    liked       | 2.0 | {X} liked to {activity}.                         | {X}喜欢{activity}。
    did         | 2.0 | Then {X} and {Y} {activity:past} at the {place}. | 然后{X}和{Y}在{place}{activity}。
    animal      | 1.5 | The {animal} at the {place} was very {adj}.      | {place}的{animal}非常{adj}。
    told        | 1.5 | {X} told {Y} a story about {animal:a}.           | {X}给{Y}讲了一个关于{animal}的故事。
    bag         | 1.5 | {X} had {count_obj} in a bag.                    | {X}的包里有{count_obj}。
    clock       | 1.0 | At {hour} o'clock, {X} felt {feeling}.           | {hour}点的时候，{X}觉得很{feeling}。
    age         | 1.0 | {X} was {age} years old.                         | {X}今年{age}岁。
    wish        | 1.0 | {X} wanted to {activity} with {Y}.               | {X}想和{Y}一起{activity}。
    lost        | 1.0 | {X} lost {color_obj} at the {place}.             | {X}在{place}丢了{color_obj}。
    asked       | 1.0 | {X} asked {Y} for {count_obj}.                   | {X}向{Y}要了{count_obj}。
    counted     | 1.0 | {X} counted {count_animal} in the {place}.       | {X}在{place}里数了数，一共有{count_animal}。
    """,
)

_ENDINGS = _templates(
    "ending",
    """
    home      | 3.0 | In the end, {A} and {B} went home happily.       | 最后，{A}和{B}开开心心地回家了。
    goodbye   | 2.0 | {A} said goodbye to {B}.                         | {A}和{B}说了再见。
    good_day  | 2.0 | It was a good day for {A} and {B}.               | 对{A}和{B}来说，这是美好的一天。
    the_end   | 1.5 | The end.                                         | 故事讲完了。
    come_back | 1.5 | {A} wanted to come back to the {place} tomorrow. | {A}明天还想再来{place}。
    """,
)

UTTERANCES = _templates(
    "utterance",
    """
    hello      | 2.0 | Hello, {L}!                                | 你好，{L}！
    hello_back | 0.5 | Hi, {L}! Nice to see you.                  | 嗨，{L}！见到你真高兴。
    offer      | 2.0 | Do you want {count_obj}?                   | 你想要{count_obj}吗？
    yes        | 1.0 | Yes, please. I like {obj:pl}.              | 好的，谢谢。我喜欢{obj}。
    no         | 1.0 | No, thank you. I want to {activity}.       | 不用了，谢谢。我想{activity}。
    look       | 2.0 | Look, there are {count_animal} over there! | 看，那边有{count_animal}！
    go         | 2.0 | Let's go to the {place}.                   | 我们去{place}吧。
    ok         | 1.0 | OK, {L}. Let's go!                         | 好的，{L}，我们走吧！
    feel       | 2.0 | I am {feeling} today.                      | 我今天很{feeling}。
    where      | 1.5 | Where is my {obj}?                         | 我的{obj}在哪里？
    there      | 1.0 | It is in the {place}.                      | 在{place}里。
    have       | 1.5 | I have {count_obj}.                        | 我有{count_obj}。
    ask_age    | 1.0 | How old are you?                           | 你几岁了？
    age        | 1.0 | I am {age} years old.                      | 我{age}岁了。
    thanks     | 1.0 | Thank you, {L}!                            | 谢谢你，{L}！
    play       | 1.5 | Can we {activity} together?                | 我们可以一起{activity}吗？
    bye        | 1.0 | Goodbye, {L}!                              | 再见，{L}！
    ask_time   | 1.0 | What time is it?                           | 现在几点了？
    time       | 1.0 | It is {hour} o'clock.                      | 现在{hour}点了。
    like       | 1.5 | Do you like {food}?                        | 你喜欢吃{food}吗？
    like_yes   | 1.0 | Yes, I like {food} very much.              | 是的，我非常喜欢吃{food}。
    """,
)

TEMPLATES_BY_ROLE = {"opening": _OPENINGS, "body": _BODIES, "ending": _ENDINGS, "utterance": UTTERANCES}
TEMPLATE_BY_ID = {(t.role, t.id): t for ts in TEMPLATES_BY_ROLE.values() for t in ts}

# Dialogue turns form a Markov chain over utterance templates: a question is usually answered.
# The conditional distribution is (follow-up mass) + (remaining mass) x (base distribution).
START_TURN = "<start>"
_FOLLOW_UPS = {
    START_TURN: {"hello": 0.6},
    "hello": {"hello_back": 0.7},
    "offer": {"yes": 0.45, "no": 0.45},
    "go": {"ok": 0.7},
    "where": {"there": 0.8},
    "ask_age": {"age": 0.9},
    "ask_time": {"time": 0.9},
    "like": {"like_yes": 0.8},
    "thanks": {"bye": 0.5},
}

# Refs are fields whose value is fixed by the line's context: they cost no probability.
REF_FIELDS = {
    "opening": frozenset(),
    "body": frozenset("ABY"),
    "ending": frozenset("ABY"),
    "utterance": frozenset("ABYL"),
}

# Length decisions: after each line past `min_lines`, continue with probability `p_continue`;
# at `max_lines` the document stops without a decision.
LENGTH_RULES = {
    "story": {"min_lines": 2, "max_lines": 8, "p_continue": 0.7},
    "dialogue": {"min_lines": 2, "max_lines": 10, "p_continue": 0.8},
    "parallel": {"min_lines": 1, "max_lines": 4, "p_continue": 0.6},
}

DOC_TYPES = ("en_story", "zh_story", "en_dialogue", "zh_dialogue", "parallel")
DOC_TYPE_WEIGHTS = (0.32, 0.32, 0.12, 0.12, 0.12)
DOC_TYPE_INFO = {
    "en_story": ("story", "en"),
    "zh_story": ("story", "zh"),
    "en_dialogue": ("dialogue", "en"),
    "zh_dialogue": ("dialogue", "zh"),
    "parallel": ("parallel", "en"),
}
TURN_SEPARATOR = {"en": ": ", "zh": "："}


def _build_tables(words: int | None = None) -> dict[str, ChoiceTable]:
    """Every table of the grammar; `words` keeps only the first `words` entries of each word list (names,
    places, food, ...), the knob of the corpus variants: fewer words, lower entropy, faster to learn."""

    def first(items) -> list:
        items = list(items)
        return items if words is None else items[:words]

    names = first(NAMES)
    tables = {
        "doc_type": ChoiceTable("doc_type", zip(DOC_TYPES, DOC_TYPE_WEIGHTS)),
        "cast_member": ChoiceTable("cast_member", _uniform(("A", "B"))),
        "name": ChoiceTable("name", _uniform(names)),
        # Weather and time are uniform so the weather classification task is balanced.
        "weather": ChoiceTable("weather", _uniform(first(SIMPLE_WORDS["weather"]))),
        "time": ChoiceTable("time", _uniform(first(SIMPLE_WORDS["time"]))),
        "count": ChoiceTable("count", _zipf(range(2, 11), exponent=1.0, offset=1.0)),
        "hour": ChoiceTable("hour", _uniform(range(1, 13))),
        "age": ChoiceTable("age", _uniform(range(5, 13))),
    }
    for kind in ("place", "food", "feeling", "adj", "color"):
        tables[kind] = ChoiceTable(kind, _zipf(first(SIMPLE_WORDS[kind])))
    for kind in ("obj", "animal"):
        tables[kind] = ChoiceTable(kind, _zipf(first(COUNTABLES[kind])))
    tables["activity"] = ChoiceTable("activity", _zipf(first(ACTIVITIES)))
    for first_name in names:
        name = f"name_after:{first_name}"
        tables[name] = ChoiceTable(name, _uniform(n for n in names if n != first_name))
    for role in ("opening", "body", "ending"):
        name = f"template:{role}"
        tables[name] = ChoiceTable(name, ((t.id, t.weight) for t in TEMPLATES_BY_ROLE[role]))
    base_total = math.fsum(t.weight for t in UTTERANCES)
    for previous in (START_TURN, *(t.id for t in UTTERANCES)):
        follow = _FOLLOW_UPS.get(previous, {})
        rest = 1.0 - math.fsum(follow.values())
        name = f"template:utterance|{previous}"
        tables[name] = ChoiceTable(
            name, ((t.id, rest * t.weight / base_total + follow.get(t.id, 0.0)) for t in UTTERANCES)
        )
    for kind, rule in LENGTH_RULES.items():
        name = f"continue:{kind}"
        tables[name] = ChoiceTable(name, ((True, rule["p_continue"]), (False, 1.0 - rule["p_continue"])))
    return tables


TABLES = _build_tables()
# The smallest word list a variant may keep: two names make a cast.
MIN_VARIANT_WORDS = 2


@functools.lru_cache(maxsize=8)
def tables_for(words: int | None = None) -> dict[str, ChoiceTable]:
    """The tables of the full grammar (`words` None) or of the variant keeping `words` entries per word list."""
    if words is None:
        return TABLES
    if isinstance(words, bool) or not isinstance(words, int) or words < MIN_VARIANT_WORDS:
        raise ValueError(
            f"words must be an integer >= {MIN_VARIANT_WORDS} (entries kept per word list), got {words!r}"
        )
    return _build_tables(words)


def all_choice_tables() -> dict[str, ChoiceTable]:
    """Every distribution the grammar draws from, by name (a copy of the mapping)."""
    return dict(TABLES)
