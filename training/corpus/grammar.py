"""A built-in bilingual (Chinese/English) corpus with an exactly known entropy.

Every document comes from a small probabilistic grammar written for wenlm: short stories and dialogues
about two named characters, with places, objects, animals, food, activities, feelings, times of day,
weather and numbers.  Five document types exist: an English story, a Chinese story, an English
dialogue, a Chinese dialogue, and a parallel story whose English lines are each followed by their
Chinese translation.  A story is an opening line, a random number of body lines and an ending line; a
dialogue is an opening line followed by alternating turns ``Name: utterance``.

The grammar is unambiguous: :func:`parse_document` recovers every choice (document type, template of
every line, every word, every continue/stop decision) from the text alone, and raises
:class:`GrammarAmbiguityError` if it ever finds two derivations.  Because of that the probability of
a text equals the probability of its one derivation, so the log-probability recorded while sampling
(:func:`generate_documents`) can be recomputed from the text (:func:`document_logprob`), and the
entropy of the corpus is known: a Monte-Carlo estimate (:func:`entropy_bits_per_byte`) and a closed
form computed from the grammar tables (:func:`exact_entropy_bits_per_byte`) agree.

Nothing here reads files or downloads anything, so ``wenlm`` can train a model on a fresh machine.
Different seeds give different (in practice disjoint) samples: use ``seed`` for training data and
``seed + VALIDATION_SEED_OFFSET`` for validation data.
"""

from __future__ import annotations

import bisect
import json
import math
import os
import random
import string
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

__all__ = [
    "DOC_TYPES",
    "ENTROPY_NOTE",
    "TASK_KINDS",
    "VALIDATION_SEED_OFFSET",
    "ChoiceTable",
    "GrammarAmbiguityError",
    "ParsedDocument",
    "all_choice_tables",
    "document_logprob",
    "entropy_bits_per_byte",
    "exact_entropy_bits_per_byte",
    "generate_documents",
    "make_task_rows",
    "parse_document",
    "parse_sentence",
    "write_jsonl",
]

TASK_KINDS = ("stories", "qa", "translate", "classify")
VALIDATION_SEED_OFFSET = 1

ENTROPY_NOTE = (
    "bits_per_byte is H(document) / E[UTF-8 bytes of the document] / ln 2 for the wenlm grammar corpus. "
    "H includes every choice of the grammar: the document type, every template and word, and the "
    "continue/stop decision after each line, i.e. the end of the document. A language model that is "
    "charged for predicting an end-of-sequence token after each document (and nothing for the bytes of "
    "that token) cannot reach a validation bits-per-byte below this value on the same distribution. "
    "The bytes counted are those of the text only, lines joined by a single newline, no trailing newline. "
    "Documents are drawn independently, so packing several into one training sequence does not lower "
    "the floor, and a model that sees a document from its middle can only do worse."
)


class GrammarAmbiguityError(RuntimeError):
    """A text has two derivations: a bug in the grammar tables, never a property of the input."""


# --------------------------------------------------------------------------------------------------
# Choice tables: every random decision of the grammar is one draw from one of these.


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


# --------------------------------------------------------------------------------------------------
# Lexicon. Each entry is keyed by its English form; the columns give its surface forms.


def _rows(block: str, columns: int) -> list[tuple[str, ...]]:
    rows = []
    for line in block.strip().splitlines():
        cells = tuple(cell.strip() for cell in line.split("|"))
        if len(cells) != columns:
            raise ValueError(f"lexicon row {line!r} should have {columns} columns")
        rows.append(cells)
    return rows


_NAME_ROWS = _rows(
    """
    Xiaoming|小明
    Lili|丽丽
    Xiaohong|小红
    Dawei|大伟
    Meimei|美美
    Tingting|婷婷
    Haoran|浩然
    Jiajia|佳佳
    Lele|乐乐
    Xiaoyu|小雨
    Mingming|明明
    Fangfang|芳芳
    Xiaolong|小龙
    Yuanyuan|圆圆
    Tiantian|甜甜
    Dongdong|东东
    Beibei|贝贝
    Huanhuan|欢欢
    Xiaojun|小军
    Qiangqiang|强强
    Tom|汤姆
    Lucy|露西
    Jack|杰克
    Emma|艾玛
    Sam|萨姆
    Anna|安娜
    Leo|里奥
    Mia|米娅
    Max|马克斯
    Lily|莉莉
    Oliver|奥利弗
    Sophie|索菲
    Daniel|丹尼尔
    Grace|格蕾丝
    Henry|亨利
    Ruby|露比
    Peter|彼得
    Alice|爱丽丝
    David|大卫
    Kate|凯特
    """,
    2,
)

_PLACE_ROWS = _rows(
    """
    park|公园
    school|学校
    market|市场
    library|图书馆
    beach|海边
    zoo|动物园
    farm|农场
    river|河边
    forest|森林
    museum|博物馆
    station|车站
    garden|花园
    hospital|医院
    kitchen|厨房
    lake|湖边
    village|村子
    cafe|咖啡馆
    bakery|面包店
    playground|操场
    bridge|桥边
    island|小岛
    temple|寺庙
    castle|城堡
    mountain|大山
    square|广场
    supermarket|超市
    bookstore|书店
    cinema|电影院
    swimming pool|游泳池
    restaurant|饭店
    classroom|教室
    airport|机场
    harbor|港口
    tea house|茶馆
    hill|山坡
    old street|老街
    valley|山谷
    field|田野
    camp|营地
    hotel|酒店
    """,
    2,
)

# English singular | English plural | Chinese measure word | Chinese noun
_OBJECT_ROWS = _rows(
    """
    apple|apples|个|苹果
    ball|balls|个|球
    book|books|本|书
    pen|pens|支|笔
    cup|cups|个|杯子
    hat|hats|顶|帽子
    kite|kites|只|风筝
    flower|flowers|朵|花
    key|keys|把|钥匙
    chair|chairs|把|椅子
    umbrella|umbrellas|把|雨伞
    letter|letters|封|信
    stone|stones|块|石头
    shell|shells|个|贝壳
    box|boxes|个|盒子
    candle|candles|支|蜡烛
    bottle|bottles|个|瓶子
    toy car|toy cars|辆|玩具车
    coin|coins|枚|硬币
    card|cards|张|卡片
    map|maps|张|地图
    photo|photos|张|照片
    sock|socks|只|袜子
    shoe|shoes|只|鞋
    bowl|bowls|个|碗
    egg|eggs|个|鸡蛋
    banana|bananas|根|香蕉
    lemon|lemons|个|柠檬
    pear|pears|个|梨
    peach|peaches|个|桃子
    cookie|cookies|块|饼干
    cake|cakes|块|蛋糕
    candy|candies|颗|糖
    leaf|leaves|片|叶子
    feather|feathers|根|羽毛
    button|buttons|颗|纽扣
    ribbon|ribbons|条|丝带
    scarf|scarves|条|围巾
    bell|bells|个|铃铛
    drum|drums|面|鼓
    lamp|lamps|盏|灯
    basket|baskets|个|篮子
    bag|bags|个|包
    notebook|notebooks|本|笔记本
    pencil|pencils|支|铅笔
    ruler|rulers|把|尺子
    doll|dolls|个|娃娃
    watch|watches|块|手表
    ring|rings|枚|戒指
    spoon|spoons|把|勺子
    """,
    4,
)

_ANIMAL_ROWS = _rows(
    """
    dog|dogs|只|狗
    cat|cats|只|猫
    bird|birds|只|鸟
    rabbit|rabbits|只|兔子
    duck|ducks|只|鸭子
    fish|fish|条|鱼
    horse|horses|匹|马
    cow|cows|头|牛
    pig|pigs|头|猪
    sheep|sheep|只|羊
    goat|goats|只|山羊
    chicken|chickens|只|鸡
    frog|frogs|只|青蛙
    monkey|monkeys|只|猴子
    panda|pandas|只|熊猫
    tiger|tigers|只|老虎
    lion|lions|头|狮子
    elephant|elephants|头|大象
    bear|bears|头|熊
    mouse|mice|只|老鼠
    deer|deer|只|鹿
    owl|owls|只|猫头鹰
    snake|snakes|条|蛇
    turtle|turtles|只|乌龟
    squirrel|squirrels|只|松鼠
    butterfly|butterflies|只|蝴蝶
    bee|bees|只|蜜蜂
    ant|ants|只|蚂蚁
    whale|whales|头|鲸鱼
    dolphin|dolphins|只|海豚
    goose|geese|只|鹅
    swan|swans|只|天鹅
    parrot|parrots|只|鹦鹉
    kangaroo|kangaroos|只|袋鼠
    fox|foxes|只|狐狸
    wolf|wolves|只|狼
    zebra|zebras|匹|斑马
    giraffe|giraffes|只|长颈鹿
    camel|camels|头|骆驼
    crab|crabs|只|螃蟹
    """,
    4,
)

_FOOD_ROWS = _rows(
    """
    rice|米饭
    noodles|面条
    dumplings|饺子
    fried rice|炒饭
    steamed buns|包子
    bread|面包
    ice cream|冰淇淋
    pizza|披萨
    hot pot|火锅
    tofu|豆腐
    porridge|粥
    mooncakes|月饼
    spring rolls|春卷
    watermelon|西瓜
    grapes|葡萄
    strawberries|草莓
    chocolate|巧克力
    popcorn|爆米花
    sandwiches|三明治
    pancakes|煎饼
    yogurt|酸奶
    cheese|奶酪
    tomato soup|番茄汤
    potatoes|土豆
    carrots|胡萝卜
    corn|玉米
    peanuts|花生
    honey|蜂蜜
    sushi|寿司
    spaghetti|意大利面
    fried eggs|煎蛋
    roast duck|烤鸭
    apple pie|苹果派
    rice cakes|年糕
    cherries|樱桃
    mangoes|芒果
    """,
    2,
)

# English base form | English past tense | Chinese
_ACTIVITY_ROWS = _rows(
    """
    read books|read books|看书
    sing songs|sang songs|唱歌
    draw pictures|drew pictures|画画
    play chess|played chess|下棋
    ride bikes|rode bikes|骑自行车
    fly kites|flew kites|放风筝
    swim|swam|游泳
    dance|danced|跳舞
    cook dinner|cooked dinner|做饭
    run|ran|跑步
    play football|played football|踢足球
    write letters|wrote letters|写信
    take photos|took photos|拍照
    plant flowers|planted flowers|种花
    go fishing|went fishing|钓鱼
    climb trees|climbed trees|爬树
    play the piano|played the piano|弹钢琴
    fold paper boats|folded paper boats|折纸船
    play hide-and-seek|played hide-and-seek|玩捉迷藏
    build a sandcastle|built a sandcastle|堆沙堡
    feed the ducks|fed the ducks|喂鸭子
    watch the stars|watched the stars|看星星
    bake cookies|baked cookies|烤饼干
    jump rope|jumped rope|跳绳
    play basketball|played basketball|打篮球
    """,
    3,
)

_FEELING_ROWS = _rows(
    """
    happy|开心
    tired|累
    hungry|饿
    sad|难过
    excited|兴奋
    sleepy|困
    scared|害怕
    surprised|惊讶
    bored|无聊
    proud|骄傲
    calm|平静
    nervous|紧张
    lucky|幸运
    lonely|孤独
    thirsty|渴
    cold|冷
    """,
    2,
)

_ADJECTIVE_ROWS = _rows(
    """
    big|大
    small|小
    cute|可爱
    quiet|安静
    noisy|吵
    fast|快
    slow|慢
    clever|聪明
    lazy|懒
    friendly|友好
    fat|胖
    shy|害羞
    """,
    2,
)

_COLOR_ROWS = _rows(
    """
    red|红色
    blue|蓝色
    green|绿色
    yellow|黄色
    white|白色
    black|黑色
    pink|粉色
    purple|紫色
    orange|橙色
    brown|棕色
    gray|灰色
    golden|金色
    silver|银色
    """,
    2,
)

_WEATHER_ROWS = _rows(
    """
    sunny|晴朗
    rainy|下雨
    snowy|下雪
    windy|刮风
    cloudy|多云
    """,
    2,
)

_TIME_ROWS = _rows(
    """
    morning|早上
    afternoon|下午
    evening|傍晚
    night|晚上
    """,
    2,
)

_NUMBER_WORDS_EN = {
    1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six",
    7: "seven", 8: "eight", 9: "nine", 10: "ten", 11: "eleven", 12: "twelve",
}
# 两 rather than 二 before a measure word or 点: "两个苹果", "两点".
_NUMBER_WORDS_ZH = {
    1: "一", 2: "两", 3: "三", 4: "四", 5: "五", 6: "六",
    7: "七", 8: "八", 9: "九", 10: "十", 11: "十一", 12: "十二",
}

_NAMES = {en: {"en": en, "zh": zh} for en, zh in _NAME_ROWS}
_SIMPLE_WORDS = {
    "place": {en: {"en": en, "zh": zh} for en, zh in _PLACE_ROWS},
    "food": {en: {"en": en, "zh": zh} for en, zh in _FOOD_ROWS},
    "feeling": {en: {"en": en, "zh": zh} for en, zh in _FEELING_ROWS},
    "adj": {en: {"en": en, "zh": zh} for en, zh in _ADJECTIVE_ROWS},
    "color": {en: {"en": en, "zh": zh} for en, zh in _COLOR_ROWS},
    "weather": {en: {"en": en, "zh": zh} for en, zh in _WEATHER_ROWS},
    "time": {en: {"en": en, "zh": zh} for en, zh in _TIME_ROWS},
}
_COUNTABLES = {
    "obj": {sg: {"sg": sg, "pl": pl, "mw": mw, "zh": zh} for sg, pl, mw, zh in _OBJECT_ROWS},
    "animal": {sg: {"sg": sg, "pl": pl, "mw": mw, "zh": zh} for sg, pl, mw, zh in _ANIMAL_ROWS},
}
_ACTIVITIES = {base: {"base": base, "past": past, "zh": zh} for base, past, zh in _ACTIVITY_ROWS}

# Fields named A, B, X, Y and L hold character names. A and B are the cast, bound by the opening line;
# X is a fresh choice between them, Y is whichever of the two X is not, L is the listener in a dialogue.
_CAST_FIELDS = frozenset("ABXYL")

# A composite field is several independent choices rendered together, because its surface form needs
# all of them (plural depends on the number, the Chinese measure word on the noun).
_FIELD_COMPONENTS = {
    "place": ("place",), "food": ("food",), "feeling": ("feeling",), "adj": ("adj",),
    "activity": ("activity",), "weather": ("weather",), "time": ("time",), "hour": ("hour",),
    "age": ("age",), "obj": ("obj",), "animal": ("animal",),
    "count_obj": ("count", "obj"), "count_animal": ("count", "animal"), "color_obj": ("color", "obj"),
}


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _field_kind(field_name: str) -> str:
    return "name" if field_name in _CAST_FIELDS else field_name.rstrip("0123456789")


def _render_value(kind: str, spec: str, lang: str, value) -> str:
    """Surface form of one field value. The parser's tries are built from this same function."""
    if kind == "name":
        return _NAMES[value][lang]
    if kind in _SIMPLE_WORDS:
        return _SIMPLE_WORDS[kind][value][lang]
    if kind in ("hour", "age"):
        return (_NUMBER_WORDS_EN if lang == "en" else _NUMBER_WORDS_ZH)[value]
    if kind == "activity":
        entry = _ACTIVITIES[value]
        return entry["zh"] if lang == "zh" else entry["past" if spec == "past" else "base"]
    if kind in ("obj", "animal"):
        entry = _COUNTABLES[kind][value]
        if lang == "zh":
            return entry["zh"]
        if spec == "pl":
            return entry["pl"]
        if spec == "a":
            return f"{_article(entry['sg'])} {entry['sg']}"
        return entry["sg"]
    if kind in ("count_obj", "count_animal"):
        number, noun = value
        entry = _COUNTABLES["obj" if kind == "count_obj" else "animal"][noun]
        if lang == "zh":
            return f"{_NUMBER_WORDS_ZH[number]}{entry['mw']}{entry['zh']}"
        return f"{_NUMBER_WORDS_EN[number]} {entry['pl']}"
    if kind == "color_obj":
        color, noun = value
        entry = _COUNTABLES["obj"][noun]
        if lang == "zh":
            return f"一{entry['mw']}{_SIMPLE_WORDS['color'][color]['zh']}的{entry['zh']}"
        return f"{_article(color)} {color} {entry['sg']}"
    raise KeyError(f"unknown field kind {kind!r}")


# --------------------------------------------------------------------------------------------------
# Templates. Each is one sentence with an English and a Chinese rendering over the same fields.


@dataclass(frozen=True)
class _Template:
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
                parts.append(_render_value(_field_kind(name), spec, lang, values[name]))
        return "".join(parts)


def _compile(fmt: str) -> tuple:
    elements = []
    for literal, name, spec, _ in string.Formatter().parse(fmt):
        if literal:
            elements.append(literal)
        if name is not None:
            elements.append((name, spec or ""))
    return tuple(elements)


def _templates(role: str, rows: list[tuple[str, float, str, str]]) -> tuple[_Template, ...]:
    built = []
    for template_id, weight, english, chinese in rows:
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
        literals = {lang: tuple(e for e in pattern if isinstance(e, str)) for lang, pattern in patterns.items()}
        built.append(_Template(template_id, role, weight, patterns, tuple(dict.fromkeys(fields_by_lang["en"])),
                               literals))
    return tuple(built)


_OPENINGS = _templates(
    "opening",
    [
        ("went", 3.0, "One {weather} {time}, {A} and {B} went to the {place}.",
         "一个{weather}的{time}，{A}和{B}去了{place}。"),
        ("met", 2.0, "It was a {weather} {time}. {A} met {B} at the {place}.",
         "那是一个{weather}的{time}。{A}在{place}遇到了{B}。"),
        ("visited", 1.5, "On a {weather} {time}, {A} visited {B} at the {place}.",
         "在一个{weather}的{time}，{A}去{place}看望{B}。"),
        ("played", 1.0, "On a {weather} {time}, {A} and {B} played at the {place}.",
         "在一个{weather}的{time}，{A}和{B}在{place}玩耍。"),
    ],
)

_BODIES = _templates(
    "body",
    [
        ("found", 3.0, "{X} found {count_obj} under a tree.", "{X}在树下找到了{count_obj}。"),
        ("gave", 3.0, "{X} gave {Y} {color_obj}.", "{X}送给{Y}{color_obj}。"),
        ("saw", 3.0, "{X} saw {count_animal} near the {place}.", "{X}在{place}附近看到了{count_animal}。"),
        ("wanted_food", 2.5, "{X} wanted to eat {food}.", "{X}想吃{food}。"),
        ("ate", 2.5, "{X} and {Y} ate {food} together.", "{X}和{Y}一起吃了{food}。"),
        ("bought", 2.0, "{X} bought {count_obj} for {Y}.", "{X}给{Y}买了{count_obj}。"),
        ("felt", 2.0, "{X} felt {feeling}.", "{X}觉得很{feeling}。"),
        ("liked", 2.0, "{X} liked to {activity}.", "{X}喜欢{activity}。"),
        ("did", 2.0, "Then {X} and {Y} {activity:past} at the {place}.", "然后{X}和{Y}在{place}{activity}。"),
        ("animal", 1.5, "The {animal} at the {place} was very {adj}.", "{place}的{animal}非常{adj}。"),
        ("told", 1.5, "{X} told {Y} a story about {animal:a}.", "{X}给{Y}讲了一个关于{animal}的故事。"),
        ("bag", 1.5, "{X} had {count_obj} in a bag.", "{X}的包里有{count_obj}。"),
        ("clock", 1.0, "At {hour} o'clock, {X} felt {feeling}.", "{hour}点的时候，{X}觉得很{feeling}。"),
        ("age", 1.0, "{X} was {age} years old.", "{X}今年{age}岁。"),
        ("wish", 1.0, "{X} wanted to {activity} with {Y}.", "{X}想和{Y}一起{activity}。"),
        ("lost", 1.0, "{X} lost {color_obj} at the {place}.", "{X}在{place}丢了{color_obj}。"),
        ("asked", 1.0, "{X} asked {Y} for {count_obj}.", "{X}向{Y}要了{count_obj}。"),
        ("counted", 1.0, "{X} counted {count_animal} in the {place}.", "{X}在{place}里数了数，一共有{count_animal}。"),
    ],
)

_ENDINGS = _templates(
    "ending",
    [
        ("home", 3.0, "In the end, {A} and {B} went home happily.", "最后，{A}和{B}开开心心地回家了。"),
        ("goodbye", 2.0, "{A} said goodbye to {B}.", "{A}和{B}说了再见。"),
        ("good_day", 2.0, "It was a good day for {A} and {B}.", "对{A}和{B}来说，这是美好的一天。"),
        ("the_end", 1.5, "The end.", "故事讲完了。"),
        ("come_back", 1.5, "{A} wanted to come back to the {place} tomorrow.", "{A}明天还想再来{place}。"),
    ],
)

_UTTERANCES = _templates(
    "utterance",
    [
        ("hello", 2.0, "Hello, {L}!", "你好，{L}！"),
        ("hello_back", 0.5, "Hi, {L}! Nice to see you.", "嗨，{L}！见到你真高兴。"),
        ("offer", 2.0, "Do you want {count_obj}?", "你想要{count_obj}吗？"),
        ("yes", 1.0, "Yes, please. I like {obj:pl}.", "好的，谢谢。我喜欢{obj}。"),
        ("no", 1.0, "No, thank you. I want to {activity}.", "不用了，谢谢。我想{activity}。"),
        ("look", 2.0, "Look, there are {count_animal} over there!", "看，那边有{count_animal}！"),
        ("go", 2.0, "Let's go to the {place}.", "我们去{place}吧。"),
        ("ok", 1.0, "OK, {L}. Let's go!", "好的，{L}，我们走吧！"),
        ("feel", 2.0, "I am {feeling} today.", "我今天很{feeling}。"),
        ("where", 1.5, "Where is my {obj}?", "我的{obj}在哪里？"),
        ("there", 1.0, "It is in the {place}.", "在{place}里。"),
        ("have", 1.5, "I have {count_obj}.", "我有{count_obj}。"),
        ("ask_age", 1.0, "How old are you?", "你几岁了？"),
        ("age", 1.0, "I am {age} years old.", "我{age}岁了。"),
        ("thanks", 1.0, "Thank you, {L}!", "谢谢你，{L}！"),
        ("play", 1.5, "Can we {activity} together?", "我们可以一起{activity}吗？"),
        ("bye", 1.0, "Goodbye, {L}!", "再见，{L}！"),
        ("ask_time", 1.0, "What time is it?", "现在几点了？"),
        ("time", 1.0, "It is {hour} o'clock.", "现在{hour}点了。"),
        ("like", 1.5, "Do you like {food}?", "你喜欢吃{food}吗？"),
        ("like_yes", 1.0, "Yes, I like {food} very much.", "是的，我非常喜欢吃{food}。"),
    ],
)

_TEMPLATES_BY_ROLE = {"opening": _OPENINGS, "body": _BODIES, "ending": _ENDINGS, "utterance": _UTTERANCES}
_TEMPLATE_BY_ID = {(t.role, t.id): t for ts in _TEMPLATES_BY_ROLE.values() for t in ts}

# Dialogue turns form a Markov chain over utterance templates: a question is usually answered.
# The conditional distribution is (follow-up mass) + (remaining mass) x (base distribution).
_START_TURN = "<start>"
_FOLLOW_UPS = {
    _START_TURN: {"hello": 0.6},
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
_REF_FIELDS = {"opening": frozenset(), "body": frozenset("ABY"), "ending": frozenset("ABY"),
               "utterance": frozenset("ABYL")}

# Length decisions: after each line past `min_lines`, continue with probability `p_continue`;
# at `max_lines` the document stops without a decision.
_LENGTH_RULES = {
    "story": {"min_lines": 2, "max_lines": 8, "p_continue": 0.7},
    "dialogue": {"min_lines": 2, "max_lines": 10, "p_continue": 0.8},
    "parallel": {"min_lines": 1, "max_lines": 4, "p_continue": 0.6},
}

DOC_TYPES = ("en_story", "zh_story", "en_dialogue", "zh_dialogue", "parallel")
_DOC_TYPE_WEIGHTS = (0.32, 0.32, 0.12, 0.12, 0.12)
_DOC_TYPE_INFO = {
    "en_story": ("story", "en"), "zh_story": ("story", "zh"),
    "en_dialogue": ("dialogue", "en"), "zh_dialogue": ("dialogue", "zh"),
    "parallel": ("parallel", "en"),
}
_TURN_SEPARATOR = {"en": ": ", "zh": "："}


def _build_tables() -> dict[str, ChoiceTable]:
    tables = {
        "doc_type": ChoiceTable("doc_type", zip(DOC_TYPES, _DOC_TYPE_WEIGHTS)),
        "cast_member": ChoiceTable("cast_member", _uniform(("A", "B"))),
        "name": ChoiceTable("name", _uniform(_NAMES)),
        # Weather and time are uniform so the weather classification task is balanced.
        "weather": ChoiceTable("weather", _uniform(_SIMPLE_WORDS["weather"])),
        "time": ChoiceTable("time", _uniform(_SIMPLE_WORDS["time"])),
        "place": ChoiceTable("place", _zipf(_SIMPLE_WORDS["place"])),
        "food": ChoiceTable("food", _zipf(_SIMPLE_WORDS["food"])),
        "feeling": ChoiceTable("feeling", _zipf(_SIMPLE_WORDS["feeling"])),
        "adj": ChoiceTable("adj", _zipf(_SIMPLE_WORDS["adj"])),
        "color": ChoiceTable("color", _zipf(_SIMPLE_WORDS["color"])),
        "obj": ChoiceTable("obj", _zipf(_COUNTABLES["obj"])),
        "animal": ChoiceTable("animal", _zipf(_COUNTABLES["animal"])),
        "activity": ChoiceTable("activity", _zipf(_ACTIVITIES)),
        "count": ChoiceTable("count", _zipf(range(2, 11), exponent=1.0, offset=1.0)),
        "hour": ChoiceTable("hour", _uniform(range(1, 13))),
        "age": ChoiceTable("age", _uniform(range(5, 13))),
    }
    for first in _NAMES:
        name = f"name_after:{first}"
        tables[name] = ChoiceTable(name, _uniform(n for n in _NAMES if n != first))
    for role in ("opening", "body", "ending"):
        name = f"template:{role}"
        tables[name] = ChoiceTable(name, ((t.id, t.weight) for t in _TEMPLATES_BY_ROLE[role]))
    base_total = math.fsum(t.weight for t in _UTTERANCES)
    for previous in (_START_TURN, *(t.id for t in _UTTERANCES)):
        follow = _FOLLOW_UPS.get(previous, {})
        rest = 1.0 - math.fsum(follow.values())
        name = f"template:utterance|{previous}"
        tables[name] = ChoiceTable(
            name, ((t.id, rest * t.weight / base_total + follow.get(t.id, 0.0)) for t in _UTTERANCES)
        )
    for kind, rule in _LENGTH_RULES.items():
        name = f"continue:{kind}"
        tables[name] = ChoiceTable(name, ((True, rule["p_continue"]), (False, 1.0 - rule["p_continue"])))
    return tables


_TABLES = _build_tables()


def all_choice_tables() -> dict[str, ChoiceTable]:
    """Every distribution the grammar draws from, by name (a copy of the mapping)."""
    return dict(_TABLES)


# --------------------------------------------------------------------------------------------------
# Sampling.


def _other(name: str, cast: dict) -> str:
    return cast["B"] if name == cast["A"] else cast["A"]


def _sample_fields(rng: random.Random, template: _Template, context: dict) -> tuple[dict, float]:
    """Draw the free fields of a template; `context` holds A, B and the speaker S where known."""
    values = {name: context[name] for name in ("A", "B", "S") if name in context}
    logprob = 0.0
    refs = _REF_FIELDS[template.role]
    # A before B because B's distribution excludes A.
    order = sorted(template.fields, key=lambda name: (name not in "AB", name))
    for name in order:
        if name in refs:
            continue
        if name == "A":
            values["A"], lp = _TABLES["name"].sample(rng)
        elif name == "B":
            values["B"], lp = _TABLES[f"name_after:{values['A']}"].sample(rng)
        elif name == "X":
            member, lp = _TABLES["cast_member"].sample(rng)
            values["X"] = context[member]
        else:
            parts = []
            lp = 0.0
            for component in _FIELD_COMPONENTS[_field_kind(name)]:
                part, part_lp = _TABLES[component].sample(rng)
                parts.append(part)
                lp += part_lp
            values[name] = parts[0] if len(parts) == 1 else tuple(parts)
        logprob += lp
    if "Y" in template.fields:
        values["Y"] = _other(values["X"], context)
    if "L" in template.fields:
        values["L"] = _other(context["S"], context)
    return values, logprob


@dataclass
class ParsedDocument:
    """The derivation of one document: its type, cast, opening facts and every line's template."""

    doc_type: str
    logprob: float
    cast: tuple  # (A, B) name ids (English forms)
    weather: str
    time: str
    place: str
    lines: list = field(default_factory=list)  # (role, template id, field values) per grammar line

    @property
    def lang(self) -> str:
        return "bilingual" if self.doc_type == "parallel" else self.doc_type[:2]


def _sample_document(rng: random.Random, doc_type: str | None = None) -> tuple[str, ParsedDocument]:
    """Sample one document. With `doc_type` given, its choice is not drawn nor counted in logprob."""
    logprob = 0.0
    if doc_type is None:
        doc_type, logprob = _TABLES["doc_type"].sample(rng)
    structure, lang = _DOC_TYPE_INFO[doc_type]
    opening, lp = _TABLES["template:opening"].sample(rng)
    logprob += lp
    opening = _TEMPLATE_BY_ID[("opening", opening)]
    values, lp = _sample_fields(rng, opening, {})
    logprob += lp
    cast = {"A": values["A"], "B": values["B"]}
    derivation = [("opening", opening, values)]

    rule = _LENGTH_RULES[structure]
    body_role = "utterance" if structure == "dialogue" else "body"
    previous = _START_TURN
    count = 0
    while True:
        context = dict(cast)
        if structure == "dialogue":
            context["S"] = cast["A"] if count % 2 == 0 else cast["B"]
            table = _TABLES[f"template:utterance|{previous}"]
        else:
            table = _TABLES["template:body"]
        template_id, lp = table.sample(rng)
        logprob += lp
        template = _TEMPLATE_BY_ID[(body_role, template_id)]
        values, lp = _sample_fields(rng, template, context)
        logprob += lp
        derivation.append((body_role, template, values))
        previous = template_id
        count += 1
        if count >= rule["max_lines"]:
            break
        if count >= rule["min_lines"]:
            go_on, lp = _TABLES[f"continue:{structure}"].sample(rng)
            logprob += lp
            if not go_on:
                break
    if structure != "dialogue":
        ending, lp = _TABLES["template:ending"].sample(rng)
        logprob += lp
        ending = _TEMPLATE_BY_ID[("ending", ending)]
        values, lp = _sample_fields(rng, ending, cast)
        logprob += lp
        derivation.append(("ending", ending, values))

    lines = []
    for role, template, values in derivation:
        if structure == "parallel":
            lines.append(template.render("en", values))
            lines.append(template.render("zh", values))
        elif role == "utterance":
            speaker = _render_value("name", "", lang, values["S"])
            lines.append(speaker + _TURN_SEPARATOR[lang] + template.render(lang, values))
        else:
            lines.append(template.render(lang, values))
    opening_values = derivation[0][2]
    parsed = ParsedDocument(
        doc_type=doc_type, logprob=logprob, cast=(cast["A"], cast["B"]),
        weather=opening_values["weather"], time=opening_values["time"], place=opening_values["place"],
        lines=[(role, template.id, values) for role, template, values in derivation],
    )
    return "\n".join(lines), parsed


def _check_count(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return value


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    return seed


def _rng(stream: str, seed: int) -> random.Random:
    # A string seed is hashed with SHA-512 by `random`, so streams are reproducible across runs and
    # platforms, and each task kind gets its own stream for the same user seed.
    return random.Random(f"wenlm.corpus/{stream}/{seed}")


def generate_documents(num_docs: int, seed: int = 0) -> Iterator[dict]:
    """Yield `num_docs` documents ``{"text": str, "logprob": float}``, deterministically for `seed`.

    ``logprob`` is the exact natural-log probability of the text under the grammar, counting every
    choice including the document type and the decision to stop. Documents are produced one at a
    time, so any number can be streamed.
    """
    _check_count("num_docs", num_docs)
    rng = _rng("stories", _check_seed(seed))
    for _ in range(num_docs):
        text, parsed = _sample_document(rng)
        yield {"text": text, "logprob": parsed.logprob}


# --------------------------------------------------------------------------------------------------
# Parsing.


_TRIE_END = ""  # never a key for a character, which always has length 1
_TRIES: dict = {}


def _all_values(kind: str) -> list:
    if kind == "name":
        return list(_NAMES)
    components = [_TABLES[c].options for c in _FIELD_COMPONENTS[kind]]
    if len(components) == 1:
        return list(components[0])
    return [(a, b) for a in components[0] for b in components[1]]


def _trie(kind: str, spec: str, lang: str) -> dict:
    key = (kind, spec, lang)
    if key not in _TRIES:
        root: dict = {}
        for value in _all_values(kind):
            node = root
            for char in _render_value(kind, spec, lang, value):
                node = node.setdefault(char, {})
            if _TRIE_END in node:
                raise GrammarAmbiguityError(
                    f"{kind} values {node[_TRIE_END]!r} and {value!r} are both written "
                    f"{_render_value(kind, spec, lang, value)!r} in {lang}"
                )
            node[_TRIE_END] = value
        _TRIES[key] = root
    return _TRIES[key]


def _trie_prefixes(trie: dict, text: str, pos: int) -> Iterator[tuple[object, int]]:
    """Every vocabulary value whose surface form starts `text` at `pos`, with where it ends."""
    node = trie
    while True:
        if _TRIE_END in node:
            yield node[_TRIE_END], pos
        if pos >= len(text):
            return
        node = node.get(text[pos])
        if node is None:
            return
        pos += 1


def _candidates(name: str, spec: str, lang: str, text: str, pos: int, context: dict, values: dict):
    kind = _field_kind(name)
    known = values.get(name, context.get(name))
    if known is None and "A" in context:
        if name == "Y" and "X" in values:
            known = _other(values["X"], context)
        elif name == "L" and "S" in context:
            known = _other(context["S"], context)
    if known is not None:
        surface = _render_value(kind, spec, lang, known)
        if text.startswith(surface, pos):
            yield known, pos + len(surface)
        return
    if name == "X" and "A" in context:
        for member in (context["A"], context["B"]):
            surface = _render_value("name", spec, lang, member)
            if text.startswith(surface, pos):
                yield member, pos + len(surface)
        return
    yield from _trie_prefixes(_trie(kind, spec, lang), text, pos)


def _match_template(template: _Template, lang: str, text: str, context: dict) -> list[dict]:
    """All assignments of field values under which `template` renders exactly `text`."""
    pattern = template.patterns[lang]
    matches = []

    def walk(index: int, pos: int, values: dict) -> None:
        if index == len(pattern):
            if pos == len(text):
                matches.append(dict(values))
            return
        element = pattern[index]
        if isinstance(element, str):
            if text.startswith(element, pos):
                walk(index + 1, pos + len(element), values)
            return
        name, spec = element
        for value, end in _candidates(name, spec, lang, text, pos, context, values):
            had = name in values
            values[name] = value
            walk(index + 1, end, values)
            if not had:
                del values[name]

    walk(0, 0, {})
    valid = []
    for values in matches:
        full = {name: context[name] for name in ("A", "B", "S") if name in context}
        full.update(values)
        if "A" in full and "B" in full and full["A"] == full["B"]:
            continue  # the grammar never gives both characters the same name
        if "X" in full and "Y" in full and full["X"] == full["Y"]:
            continue
        if "Y" in template.fields and "A" in context and full["Y"] != _other(full["X"], context):
            continue
        if template.render(lang, full) != text:
            raise GrammarAmbiguityError(f"template {template.id} matched {text!r} but renders differently")
        valid.append(full)
    return valid


def _match_role(role: str, lang: str, text: str, context: dict) -> tuple[_Template, dict] | None:
    found = []
    for template in _TEMPLATES_BY_ROLE[role]:
        if not all(literal in text for literal in template.literals[lang]):
            continue
        found.extend((template, values) for values in _match_template(template, lang, text, context))
    if len(found) > 1:
        raise GrammarAmbiguityError(f"{len(found)} derivations of {role} line {text!r}: {found!r}")
    return found[0] if found else None


def _fields_logprob(template: _Template, values: dict, context: dict) -> float:
    logprob = 0.0
    refs = _REF_FIELDS[template.role]
    for name in template.fields:
        if name in refs:
            continue
        if name == "A":
            logprob += _TABLES["name"].logprob(values["A"])
        elif name == "B":
            logprob += _TABLES[f"name_after:{values['A']}"].logprob(values["B"])
        elif name == "X":
            logprob += _TABLES["cast_member"].logprob("A" if values["X"] == context["A"] else "B")
        else:
            components = _FIELD_COMPONENTS[_field_kind(name)]
            parts = (values[name],) if len(components) == 1 else values[name]
            for component, part in zip(components, parts):
                logprob += _TABLES[component].logprob(part)
    return logprob


class _NoParse(Exception):
    def __init__(self, line_number: int, message: str):
        super().__init__(message)
        self.line_number = line_number
        self.message = message


_LANG_NAMES = {"en": "English", "zh": "Chinese"}


def _parse_as(lines: list[str], doc_type: str, opening_cache: dict) -> ParsedDocument:
    structure, lang = _DOC_TYPE_INFO[doc_type]
    rule = _LENGTH_RULES[structure]
    step = 2 if structure == "parallel" else 1
    grammar_lines = lines[::step]
    if structure == "parallel":
        if len(lines) % 2:
            # Line 0 ranks this below any failure on a real line, which says more about the text.
            raise _NoParse(0, "a parallel document has an even number of lines (English, Chinese)")
    logprob = _TABLES["doc_type"].logprob(doc_type)
    derivation = []

    def parse_line(index: int, role: str, context: dict, text: str) -> tuple[_Template, dict]:
        if role == "opening":
            # Three document types start with the same English opening line; match it once.
            if lang not in opening_cache:
                opening_cache[lang] = _match_role(role, lang, text, context)
            found = opening_cache[lang]
        else:
            found = _match_role(role, lang, text, context)
        if found is None:
            raise _NoParse(index * step + 1, f"line {index * step + 1} ({text[:60]!r}) is not an "
                           f"{_LANG_NAMES[lang]} {role} sentence of the grammar")
        template, values = found
        if structure == "parallel":
            translation = template.render("zh", values)
            line_number = index * 2 + 2
            if lines[index * 2 + 1] != translation:
                raise _NoParse(line_number, f"line {line_number} should be the Chinese translation "
                               f"{translation!r} of the line above it")
        derivation.append((role, template.id, values))
        return template, values

    template, values = parse_line(0, "opening", {}, grammar_lines[0])
    logprob += _TABLES["template:opening"].logprob(template.id) + _fields_logprob(template, values, {})
    cast = {"A": values["A"], "B": values["B"]}
    opening_values = values

    has_ending = structure != "dialogue"
    body_lines = grammar_lines[1:-1] if has_ending else grammar_lines[1:]
    if not rule["min_lines"] <= len(body_lines) <= rule["max_lines"]:
        kind = "turns" if structure == "dialogue" else "body lines"
        raise _NoParse(len(lines), f"a {doc_type} has {rule['min_lines']} to {rule['max_lines']} {kind}, "
                       f"this text has {len(body_lines)}")
    previous = _START_TURN
    for offset, text in enumerate(body_lines, start=1):
        context = dict(cast)
        if structure == "dialogue":
            speaker = cast["A"] if (offset - 1) % 2 == 0 else cast["B"]
            context["S"] = speaker
            prefix = _render_value("name", "", lang, speaker) + _TURN_SEPARATOR[lang]
            if not text.startswith(prefix):
                raise _NoParse(offset + 1, f"line {offset + 1} ({text[:60]!r}) should start with {prefix!r}")
            template, values = parse_line(offset, "utterance", context, text[len(prefix):])
            logprob += _TABLES[f"template:utterance|{previous}"].logprob(template.id)
            previous = template.id
        else:
            template, values = parse_line(offset, "body", context, text)
            logprob += _TABLES["template:body"].logprob(template.id)
        logprob += _fields_logprob(template, values, context)
        if rule["min_lines"] <= offset < rule["max_lines"]:
            logprob += _TABLES[f"continue:{structure}"].logprob(offset < len(body_lines))
    if has_ending:
        template, values = parse_line(len(grammar_lines) - 1, "ending", cast, grammar_lines[-1])
        logprob += _TABLES["template:ending"].logprob(template.id) + _fields_logprob(template, values, cast)
    return ParsedDocument(
        doc_type=doc_type, logprob=logprob, cast=(cast["A"], cast["B"]), weather=opening_values["weather"],
        time=opening_values["time"], place=opening_values["place"], lines=derivation,
    )


def parse_document(text: str) -> ParsedDocument:
    """Recover the one derivation of `text`; ValueError if the grammar cannot produce `text`."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    lines = text.split("\n")
    parses = []
    failures = []
    opening_cache: dict = {}
    for doc_type in DOC_TYPES:
        try:
            parses.append(_parse_as(lines, doc_type, opening_cache))
        except _NoParse as failure:
            failures.append((failure.line_number, doc_type, failure.message))
    if len(parses) > 1:
        raise GrammarAmbiguityError(f"text parses as {[p.doc_type for p in parses]}: {text!r}")
    if not parses:
        # Explain the failure of the document type the text most likely meant to be: one written in
        # the scripts the text uses, and among those the attempt that got furthest.
        has_chinese = any("\u4e00" <= char <= "\u9fff" for char in text)
        has_latin = any("a" <= char.lower() <= "z" for char in text)
        intended = {(True, True): {"parallel"}, (True, False): {"zh_story", "zh_dialogue"},
                    (False, True): {"en_story", "en_dialogue"}}.get((has_chinese, has_latin), set(DOC_TYPES))
        line_number, doc_type, message = max(failures, key=lambda f: (f[1] in intended, f[0]))
        raise ValueError(
            f"not a wenlm grammar document ({len(text)} characters, starting {text[:40]!r}); "
            f"read as {doc_type}: {message}"
        )
    return parses[0]


def document_logprob(text: str) -> float:
    """Natural-log probability of `text` under the grammar, recomputed from the text alone.

    Raises ValueError, naming the first line that fails, if the grammar cannot generate `text`.
    """
    return parse_document(text).logprob


def parse_sentence(text: str, lang: str) -> tuple[str, str, dict]:
    """Parse one stand-alone sentence (as in the translate task) into (role, template id, values).

    Names are read from the sentence itself, since there is no opening line to introduce them.
    """
    if lang not in _LANG_NAMES:
        raise ValueError(f"lang must be one of {sorted(_LANG_NAMES)}, got {lang!r}")
    found = []
    for role in ("opening", "body", "ending", "utterance"):
        match = _match_role(role, lang, text, {})
        if match is not None:
            found.append((role, match[0].id, match[1]))
    if not found:
        raise ValueError(f"{text!r} is not an {_LANG_NAMES[lang]} sentence of the wenlm grammar")
    if len(found) > 1:
        raise GrammarAmbiguityError(f"{text!r} parses as {[(r, t) for r, t, _ in found]}")
    return found[0]


# --------------------------------------------------------------------------------------------------
# Entropy.


def entropy_bits_per_byte(num_docs: int = 20000, seed: int = 12345) -> dict:
    """Monte-Carlo estimate of the corpus entropy rate in bits per UTF-8 byte.

    bits_per_byte = sum(-logprob) / sum(bytes) / ln 2 over `num_docs` sampled documents, with the
    delta-method standard error of that ratio estimator. The end-of-document decision is part of
    the grammar, so this is the floor for a model that predicts an EOS token after each document:
    no model's validation bits-per-byte on this distribution can be lower (see ENTROPY_NOTE).
    """
    if _check_count("num_docs", num_docs) < 2:
        raise ValueError(f"num_docs must be at least 2 to estimate a standard error, got {num_docs}")
    sum_nats = sum_bytes = sum_nats_sq = sum_bytes_sq = sum_cross = 0.0
    for document in generate_documents(num_docs, seed):
        nats = -document["logprob"]
        size = len(document["text"].encode("utf-8"))
        sum_nats += nats
        sum_bytes += size
        sum_nats_sq += nats * nats
        sum_bytes_sq += size * size
        sum_cross += nats * size
    ratio = sum_nats / sum_bytes
    # Variance of the residuals nats - ratio * bytes, expanded so one streaming pass suffices.
    residual_ss = sum_nats_sq - 2 * ratio * sum_cross + ratio * ratio * sum_bytes_sq
    residual_var = max(residual_ss, 0.0) / (num_docs - 1)
    mean_bytes = sum_bytes / num_docs
    stderr = math.sqrt(residual_var / num_docs) / mean_bytes
    return {
        "bits_per_byte": ratio / math.log(2),
        "stderr": stderr / math.log(2),
        "num_docs": num_docs,
        "bytes": int(sum_bytes),
        "mean_doc_bytes": mean_bytes,
    }


def _expected_field(name: str, spec: str, lang: str) -> tuple[float, float]:
    """(entropy in nats if the field is a free choice, expected UTF-8 bytes of its surface)."""
    kind = _field_kind(name)
    if kind == "name":
        # Names are uniform, so A, the B that excludes A, X, Y and L all have uniform marginals.
        if len(set(_TABLES["name"].probs)) != 1:
            raise NotImplementedError("the closed-form entropy assumes uniformly drawn names")
        size = sum(len(_render_value("name", spec, lang, n).encode()) for n in _NAMES) / len(_NAMES)
        entropy = {"A": _TABLES["name"].entropy(), "B": _TABLES[f"name_after:{next(iter(_NAMES))}"].entropy(),
                   "X": _TABLES["cast_member"].entropy()}.get(name, 0.0)
        return entropy, size
    components = [_TABLES[c] for c in _FIELD_COMPONENTS[kind]]
    entropy = math.fsum(table.entropy() for table in components)
    if len(components) == 1:
        weighted = ((p, v) for v, p in zip(components[0].options, components[0].probs))
    else:
        first, second = components
        weighted = ((p * q, (a, b)) for a, p in zip(first.options, first.probs)
                    for b, q in zip(second.options, second.probs))
    size = math.fsum(p * len(_render_value(kind, spec, lang, v).encode()) for p, v in weighted)
    return entropy, size


def _template_expectations(template: _Template, lang: str) -> tuple[float, float]:
    """(entropy of the template's free fields in nats, expected bytes of its rendering)."""
    entropy = size = 0.0
    refs = _REF_FIELDS[template.role]
    for element in template.patterns[lang]:
        if isinstance(element, str):
            size += len(element.encode())
            continue
        name, spec = element
        field_entropy, field_size = _expected_field(name, spec, lang)
        size += field_size
        if name not in refs:
            entropy += field_entropy
    return entropy, size


def _role_expectations(role: str, lang: str, table: ChoiceTable) -> tuple[float, float]:
    entropy, size = table.entropy(), 0.0
    for template_id, prob in zip(table.options, table.probs):
        field_entropy, field_size = _template_expectations(_TEMPLATE_BY_ID[(role, template_id)], lang)
        entropy += prob * field_entropy
        size += prob * field_size
    return entropy, size


def _length_distribution(structure: str) -> tuple[dict[int, float], float]:
    """P(number of body lines = k), and the expected entropy (nats) of the continue decisions."""
    rule = _LENGTH_RULES[structure]
    table = _TABLES[f"continue:{structure}"]
    p_continue = table.probs[table.options.index(True)]
    distribution = {}
    reach = 1.0  # probability of having written at least k body lines
    decision_entropy = 0.0
    for k in range(rule["min_lines"], rule["max_lines"] + 1):
        if k == rule["max_lines"]:
            distribution[k] = reach
        else:
            distribution[k] = reach * (1 - p_continue)
            decision_entropy += reach * table.entropy()
            reach *= p_continue
    return distribution, decision_entropy


def exact_entropy_bits_per_byte() -> dict:
    """The corpus entropy rate computed in closed form from the grammar tables.

    Because the grammar is unambiguous, H(document) is the expected sum of the entropies of the
    choices made, and bytes are additive over fields, so both expectations are exact sums over the
    tables (the dialogue's template Markov chain is propagated turn by turn). Returns
    ``{"bits_per_byte", "entropy_bits_per_doc", "mean_doc_bytes"}``; see ENTROPY_NOTE.
    """
    doc_table = _TABLES["doc_type"]
    total_entropy = doc_table.entropy()
    total_bytes = 0.0
    for doc_type, p_type in zip(doc_table.options, doc_table.probs):
        structure, lang = _DOC_TYPE_INFO[doc_type]
        languages = ("en", "zh") if structure == "parallel" else (lang,)
        lengths, length_entropy = _length_distribution(structure)
        expected_count = math.fsum(k * p for k, p in lengths.items())
        entropy = length_entropy
        size = 0.0
        for index, line_lang in enumerate(languages):
            # In a parallel document the Chinese lines are determined by the English ones.
            counts_entropy = index == 0
            opening_entropy, opening_size = _role_expectations("opening", line_lang, _TABLES["template:opening"])
            size += opening_size
            entropy += opening_entropy if counts_entropy else 0.0
            if structure == "dialogue":
                turn_entropy, turn_size = _dialogue_expectations(line_lang, lengths)
                entropy += turn_entropy
                size += turn_size
                lines = 1 + expected_count
            else:
                body_entropy, body_size = _role_expectations("body", line_lang, _TABLES["template:body"])
                ending_entropy, ending_size = _role_expectations("ending", line_lang, _TABLES["template:ending"])
                size += expected_count * body_size + ending_size
                if counts_entropy:
                    entropy += expected_count * body_entropy + ending_entropy
                lines = 2 + expected_count
        total_lines = lines * len(languages)
        size += total_lines - 1  # newlines between lines
        total_entropy += p_type * entropy
        total_bytes += p_type * size
    return {
        "bits_per_byte": total_entropy / total_bytes / math.log(2),
        "entropy_bits_per_doc": total_entropy / math.log(2),
        "mean_doc_bytes": total_bytes,
    }


def _dialogue_expectations(lang: str, lengths: dict[int, float]) -> tuple[float, float]:
    """Expected entropy (nats) and bytes of all turns of a dialogue, speaker prefixes included."""
    _, name_size = _expected_field("A", "", lang)
    prefix_size = name_size + len(_TURN_SEPARATOR[lang].encode())
    per_template = {t.id: _template_expectations(t, lang) for t in _UTTERANCES}
    state = {_START_TURN: 1.0}  # distribution of the previous turn's template
    entropy = size = 0.0
    for turn in range(1, max(lengths) + 1):
        reached = math.fsum(p for k, p in lengths.items() if k >= turn)
        next_state: dict[str, float] = {}
        for previous, p_previous in state.items():
            table = _TABLES[f"template:utterance|{previous}"]
            entropy += reached * p_previous * table.entropy()
            for template_id, prob in zip(table.options, table.probs):
                field_entropy, field_size = per_template[template_id]
                entropy += reached * p_previous * prob * field_entropy
                size += reached * p_previous * prob * (field_size + prefix_size)
                next_state[template_id] = next_state.get(template_id, 0.0) + p_previous * prob
        state = next_state
    return entropy, size


# --------------------------------------------------------------------------------------------------
# Task sets for fine-tuning.

_QA_QUESTIONS = {
    "place": {"en": "Where were {A} and {B}?", "zh": "{A}和{B}在哪里？"},
    "weather": {"en": "What was the weather like?", "zh": "那天的天气怎么样？"},
    "companion": {"en": "Who was with {A}?", "zh": "谁和{A}在一起？"},
    "time": {"en": "What time of day was it?", "zh": "故事发生在一天中的什么时候？"},
}


def _qa_row(rng: random.Random) -> dict:
    lang = rng.choice(("en", "zh"))
    context, parsed = _sample_document(rng, f"{lang}_story")
    topic = rng.choice(sorted(_QA_QUESTIONS))
    a_name, b_name = (_NAMES[n][lang] for n in parsed.cast)
    question = _QA_QUESTIONS[topic][lang].format(A=a_name, B=b_name)
    answer = {
        "place": _SIMPLE_WORDS["place"][parsed.place][lang],
        "weather": _SIMPLE_WORDS["weather"][parsed.weather][lang],
        "companion": b_name,
        "time": _SIMPLE_WORDS["time"][parsed.time][lang],
    }[topic]
    return {"context": context, "question": question, "answer": answer,
            "prompt": context + "\n" + question, "response": answer, "lang": lang}


_TRANSLATE_ROLES = ChoiceTable("translate_role", (("opening", 1.0), ("body", 4.0), ("ending", 1.0),
                                                  ("utterance", 3.0)))


def _translate_row(rng: random.Random) -> dict:
    role, _ = _TRANSLATE_ROLES.sample(rng)
    first, _ = _TABLES["name"].sample(rng)
    second, _ = _TABLES[f"name_after:{first}"].sample(rng)
    context = {"A": first, "B": second, "S": rng.choice((first, second))}
    if role == "utterance":
        template_id, _ = _TABLES[f"template:utterance|{_START_TURN}"].sample(rng)
    else:
        template_id, _ = _TABLES[f"template:{role}"].sample(rng)
    template = _TEMPLATE_BY_ID[(role, template_id)]
    values, _ = _sample_fields(rng, template, context)
    english, chinese = template.render("en", values), template.render("zh", values)
    if rng.random() < 0.5:
        return {"source": chinese, "target": english, "direction": "zh-en",
                "prompt": f"Translate to English: {chinese}", "response": english}
    return {"source": english, "target": chinese, "direction": "en-zh",
            "prompt": f"翻译成中文：{english}", "response": chinese}


def _iter_task_rows(kind: str, num_rows: int, seed: int) -> Iterator[dict]:
    if kind not in TASK_KINDS:
        raise ValueError(f"unknown task kind {kind!r}; valid kinds are {', '.join(TASK_KINDS)}")
    _check_count("num_rows", num_rows)
    _check_seed(seed)
    if kind == "stories":
        yield from generate_documents(num_rows, seed)
        return
    rng = _rng(kind, seed)
    for _ in range(num_rows):
        if kind == "qa":
            yield _qa_row(rng)
        elif kind == "translate":
            yield _translate_row(rng)
        else:
            text, parsed = _sample_document(rng)
            yield {"text": text, "label": parsed.weather}


def make_task_rows(kind: str, num_rows: int, seed: int = 0) -> list[dict]:
    """Deterministic rows of one fine-tuning task; `kind` is one of TASK_KINDS.

    - ``stories``: ``{"text", "logprob"}``, identical to :func:`generate_documents`.
    - ``qa``: a Chinese or English story and a question whose answer is copied from it:
      ``{"context", "question", "answer", "prompt", "response", "lang"}``.
    - ``translate``: one sentence and its translation, rendered from the same choices:
      ``{"source", "target", "direction", "prompt", "response"}`` with direction ``zh-en``/``en-zh``.
    - ``classify``: ``{"text", "label"}`` where label is the story's weather (5 balanced classes).

    Use `seed` for training rows and ``seed + VALIDATION_SEED_OFFSET`` for validation rows.
    """
    return list(_iter_task_rows(kind, num_rows, seed))


def write_jsonl(kind: str, num_rows: int, seed: int, path, overwrite: bool = False) -> int:
    """Write task rows as JSON lines (UTF-8, non-ASCII kept) and return how many were written.

    Refuses to replace an existing file unless ``overwrite=True``.
    """
    rows = _iter_task_rows(kind, num_rows, seed)  # validates arguments before touching the file
    first = next(rows, None)
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise FileNotFoundError(f"cannot write {path}: directory {parent} does not exist; create it first")
    try:
        handle = open(path, "w" if overwrite else "x", encoding="utf-8")
    except FileExistsError:
        raise FileExistsError(
            f"{path} already exists; pass overwrite=True to replace it or choose another path"
        ) from None
    written = 0
    with handle:
        for row in ([] if first is None else [first]):
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            written += 1
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            written += 1
    return written
