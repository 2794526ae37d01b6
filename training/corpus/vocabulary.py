"""The words of the built-in grammar corpus and how each is written in English and Chinese.

Each entry is keyed by its English form; the columns of a row give its surface forms. `render_value` writes one
field value of a sentence template; the parser builds its lookup tries from the same function, so what is
generated and what is parsed cannot drift apart. Pure data tables, long by nature.
"""

from __future__ import annotations


def table_rows(block: str, columns: int) -> list[tuple[str, ...]]:
    rows = []
    for line in block.strip().splitlines():
        cells = tuple(cell.strip() for cell in line.split("|"))
        if len(cells) != columns:
            raise ValueError(f"table row {line!r} should have {columns} columns")
        rows.append(cells)
    return rows


_NAME_ROWS = table_rows(
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

_PLACE_ROWS = table_rows(
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
_OBJECT_ROWS = table_rows(
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

_ANIMAL_ROWS = table_rows(
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

_FOOD_ROWS = table_rows(
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
_ACTIVITY_ROWS = table_rows(
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

_FEELING_ROWS = table_rows(
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

_ADJECTIVE_ROWS = table_rows(
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

_COLOR_ROWS = table_rows(
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

_WEATHER_ROWS = table_rows(
    """
    sunny|晴朗
    rainy|下雨
    snowy|下雪
    windy|刮风
    cloudy|多云
    """,
    2,
)

_TIME_ROWS = table_rows(
    """
    morning|早上
    afternoon|下午
    evening|傍晚
    night|晚上
    """,
    2,
)

NUMBER_WORDS_EN = {
    1: "one",
    2: "two",
    3: "three",
    4: "four",
    5: "five",
    6: "six",
    7: "seven",
    8: "eight",
    9: "nine",
    10: "ten",
    11: "eleven",
    12: "twelve",
}
# 两 rather than 二 before a measure word or 点: "两个苹果", "两点".
NUMBER_WORDS_ZH = {
    1: "一",
    2: "两",
    3: "三",
    4: "四",
    5: "五",
    6: "六",
    7: "七",
    8: "八",
    9: "九",
    10: "十",
    11: "十一",
    12: "十二",
}

NAMES = {en: {"en": en, "zh": zh} for en, zh in _NAME_ROWS}
SIMPLE_WORDS = {
    "place": {en: {"en": en, "zh": zh} for en, zh in _PLACE_ROWS},
    "food": {en: {"en": en, "zh": zh} for en, zh in _FOOD_ROWS},
    "feeling": {en: {"en": en, "zh": zh} for en, zh in _FEELING_ROWS},
    "adj": {en: {"en": en, "zh": zh} for en, zh in _ADJECTIVE_ROWS},
    "color": {en: {"en": en, "zh": zh} for en, zh in _COLOR_ROWS},
    "weather": {en: {"en": en, "zh": zh} for en, zh in _WEATHER_ROWS},
    "time": {en: {"en": en, "zh": zh} for en, zh in _TIME_ROWS},
}
COUNTABLES = {
    "obj": {sg: {"sg": sg, "pl": pl, "mw": mw, "zh": zh} for sg, pl, mw, zh in _OBJECT_ROWS},
    "animal": {sg: {"sg": sg, "pl": pl, "mw": mw, "zh": zh} for sg, pl, mw, zh in _ANIMAL_ROWS},
}
ACTIVITIES = {base: {"base": base, "past": past, "zh": zh} for base, past, zh in _ACTIVITY_ROWS}

# Fields named A, B, X, Y and L hold character names. A and B are the cast, bound by the opening line;
# X is a fresh choice between them, Y is whichever of the two X is not, L is the listener in a dialogue.
CAST_FIELDS = frozenset("ABXYL")

# A composite field is several independent choices rendered together, because its surface form needs
# all of them (plural depends on the number, the Chinese measure word on the noun).
FIELD_COMPONENTS = {
    "place": ("place",),
    "food": ("food",),
    "feeling": ("feeling",),
    "adj": ("adj",),
    "activity": ("activity",),
    "weather": ("weather",),
    "time": ("time",),
    "hour": ("hour",),
    "age": ("age",),
    "obj": ("obj",),
    "animal": ("animal",),
    "count_obj": ("count", "obj"),
    "count_animal": ("count", "animal"),
    "color_obj": ("color", "obj"),
}


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def field_kind(field_name: str) -> str:
    return "name" if field_name in CAST_FIELDS else field_name.rstrip("0123456789")


def render_value(kind: str, spec: str, lang: str, value) -> str:
    """Surface form of one field value. The parser's tries are built from this same function."""
    if kind == "name":
        return NAMES[value][lang]
    if kind in SIMPLE_WORDS:
        return SIMPLE_WORDS[kind][value][lang]
    if kind in ("hour", "age"):
        return (NUMBER_WORDS_EN if lang == "en" else NUMBER_WORDS_ZH)[value]
    if kind == "activity":
        entry = ACTIVITIES[value]
        return entry["zh"] if lang == "zh" else entry["past" if spec == "past" else "base"]
    if kind in ("obj", "animal"):
        entry = COUNTABLES[kind][value]
        if lang == "zh":
            return entry["zh"]
        if spec == "pl":
            return entry["pl"]
        if spec == "a":
            return f"{_article(entry['sg'])} {entry['sg']}"
        return entry["sg"]
    if kind in ("count_obj", "count_animal"):
        number, noun = value
        entry = COUNTABLES["obj" if kind == "count_obj" else "animal"][noun]
        if lang == "zh":
            return f"{NUMBER_WORDS_ZH[number]}{entry['mw']}{entry['zh']}"
        return f"{NUMBER_WORDS_EN[number]} {entry['pl']}"
    if kind == "color_obj":
        color, noun = value
        entry = COUNTABLES["obj"][noun]
        if lang == "zh":
            return f"一{entry['mw']}{SIMPLE_WORDS['color'][color]['zh']}的{entry['zh']}"
        return f"{_article(color)} {color} {entry['sg']}"
    raise KeyError(f"unknown field kind {kind!r}")
