"""The names story matching knows, in English and Chinese, each under a canonical id and a kind,
and finding them in a text (`entities_in`).

The kind says what a name tells about a story. Two headlines naming different countries,
places, goods or companies tell different stories ("25% tariff on Canadian steel" / "… on
Mexican avocados"); bodies naming different countries or goods do too. Government bodies, people
and matters ("truce", "anti-subsidy") are evidence that two articles agree, never that they differ:
one official speaks on many topics, and one topic has many officials.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from bot.analyse.identity import fold

COUNTRY, REGION, GOOD, COMPANY, BODY, PERSON, MATTER = ("country", "region", "good", "company", "body", "person",
                                                        "matter")

# kind -> canonical id -> names (Latin names matched on whole words, case-folded; CJK names as substrings).
GLOSSARY: dict[str, dict[str, tuple[str, ...]]] = {
    COUNTRY: {
        "china": ("china", "chinese", "beijing", "中国", "中方", "北京", "中美"),
        "us": ("united states", "u.s.", "america", "american", "washington", "美国", "美方", "华盛顿", "中美", "对美"),
        "eu": ("european union", "eu", "brussels", "europe", "european", "欧盟", "布鲁塞尔", "欧洲", "欧企"),
        "japan": ("japan", "japanese", "tokyo", "日本", "东京"),
        "korea": ("south korea", "korean", "seoul", "韩国"),
        "canada": ("canada", "canadian", "ottawa", "加拿大", "加方"),
        "mexico": ("mexico", "mexican", "墨西哥"),
        "india": ("india", "indian", "new delhi", "印度"),
        "vietnam": ("vietnam", "vietnamese", "越南"),
        "australia": ("australia", "australian", "canberra", "澳大利亚", "澳洲"),
        "myanmar": ("myanmar", "burma", "缅甸"),
        "malaysia": ("malaysia", "malaysian", "马来西亚"),
        "uk": ("britain", "british", "united kingdom", "英国"),
        "russia": ("russia", "russian", "moscow", "俄罗斯"),
        "brazil": ("brazil", "brazilian", "巴西"),
    },
    REGION: {
        "hong-kong": ("hong kong", "香港", "港股"),
        "guangdong": ("guangdong", "广东"),
        "guangxi": ("guangxi", "广西"),
        "jiangxi": ("jiangxi", "江西"),
        "ganzhou": ("ganzhou", "赣州"),
        "sichuan": ("sichuan", "四川"),
        "inner-mongolia": ("inner mongolia", "内蒙古"),
        "baotou": ("baotou", "包头"),
        "kachin": ("kachin", "克钦"),
        "texas": ("texas", "得克萨斯", "得州"),
        "california": ("california", "加州"),
        "geneva": ("geneva", "日内瓦"),
        "london": ("london", "伦敦"),
        "stockholm": ("stockholm", "斯德哥尔摩"),
        "rotterdam": ("rotterdam", "鹿特丹"),
        "yunnan": ("yunnan", "云南"),
        "hunan": ("hunan", "湖南"),
        "fujian": ("fujian", "福建"),
        "longyan": ("longyan", "龙岩"),
        "kalgoorlie": ("kalgoorlie",),
        "mountain-pass": ("mountain pass",),
        "perth": ("perth", "珀斯"),
        "busan": ("busan", "釜山"),
        "vancouver": ("vancouver", "温哥华"),
    },
    GOOD: {
        "magnet": ("magnet", "magnets", "磁体", "磁材", "永磁", "磁铁"),
        "antimony": ("antimony", "锑"),
        "gallium": ("gallium", "镓"),
        "germanium": ("germanium", "锗"),
        "graphite": ("graphite", "石墨"),
        "neodymium": ("neodymium", "ndpr", "钕", "镨钕"),
        "dysprosium": ("dysprosium", "镝"),
        "terbium": ("terbium", "铽"),
        "tungsten": ("tungsten", "钨"),
        "yttrium": ("yttrium", "钇"),
        "scandium": ("scandium", "钪"),
        "samarium": ("samarium", "钐"),
        "lanthanum": ("lanthanum", "镧"),
        "cerium": ("cerium", "铈"),
        "lithium": ("lithium", "锂"),
        "cobalt": ("cobalt", "钴"),
        "copper": ("copper", "铜"),
        "steel": ("steel", "钢铁", "钢材"),
        "aluminium": ("aluminium", "aluminum", "铝"),
        "avocado": ("avocado", "avocados", "牛油果"),
        "soybean": ("soybean", "soybeans", "soy", "大豆"),
        "canola": ("canola", "rapeseed", "菜籽", "油菜籽"),
        "peas": ("peas", "豌豆"),
        "ev": ("electric vehicle", "electric vehicles", "electric car", "electric cars", "ev", "evs", "电动汽车",
               "电动车"),
        "car": ("car", "cars", "autos", "汽车"),
        "bus": ("bus", "buses", "大巴", "客车"),
        "solar": ("solar", "solar cell", "solar cells", "solar panels", "太阳能电池", "光伏"),
        "semiconductor": ("semiconductor", "semiconductors", "chip", "chips", "芯片", "半导体"),
        "coal": ("coal", "煤炭"),
        "lng": ("lng", "liquefied natural gas", "液化天然气"),
        "crude": ("crude", "crude oil", "原油"),
        "farm-machinery": ("farm machinery", "agricultural machinery", "农业机械", "农机"),
        "orange-juice": ("orange juice", "橙汁"),
        "washing-machine": ("washing machine", "washing machines", "洗衣机"),
        "ship": ("shipbuilding", "vessels", "ships", "造船", "船舶"),
        "lumber": ("lumber", "softwood", "木材"),
        "dairy": ("dairy", "乳制品"),
    },
    COMPANY: {
        "lynas": ("lynas", "莱纳斯"),
        "mp-materials": ("mp materials", "mp材料"),
        "northern-rare-earth": ("china northern rare earth", "northern rare earth", "北方稀土"),
        "china-rare-earth-group": ("china rare earth group", "中国稀土集团"),
        "jl-mag": ("jl mag", "金力永磁"),
        "iluka": ("iluka", "伊鲁卡"),
        "arafura": ("arafura", "阿拉弗拉"),
        "byd": ("byd", "比亚迪"),
        "catl": ("catl", "宁德时代"),
        "nexperia": ("nexperia", "安世"),
        "neo-performance": ("neo performance", "neo performance materials"),
        "energy-fuels": ("energy fuels",),
        "solvay": ("solvay", "索尔维"),
        "ucore": ("ucore",),
        "vulcan-elements": ("vulcan elements",),
        "niron": ("niron",),
        "hastings": ("hastings",),
        "pensana": ("pensana",),
        "mkango": ("mkango",),
        "aclara": ("aclara",),
        "xiamen-tungsten": ("xiamen tungsten", "厦门钨业"),
        "shenghe": ("shenghe", "盛和资源"),
        "guangsheng": ("guangsheng", "广晟有色"),
        "ningbo-yunsheng": ("ningbo yunsheng", "宁波韵升"),
        "zhenghai": ("zhenghai", "正海磁材"),
        "zhong-ke-san-huan": ("zhong ke san huan", "中科三环"),
        "baotou-steel": ("baotou steel", "包钢股份", "包钢"),
        "minmetals-rare-earth": ("minmetals rare earth", "五矿稀土"),
        "innuovo": ("innuovo", "英洛华"),
    },
    BODY: {
        "mofcom": ("commerce ministry", "ministry of commerce", "mofcom", "商务部"),
        "customs": ("customs", "gacc", "海关", "海关总署"),
        "ustr": ("ustr", "trade representative", "贸易代表"),
        "treasury": ("treasury", "财政部"),
        "white-house": ("white house", "白宫"),
        "european-commission": ("european commission", "欧盟委员会", "欧委会"),
        "pentagon": ("pentagon", "五角大楼"),
    },
    PERSON: {
        "trump": ("trump", "特朗普"),
        "bessent": ("bessent", "贝森特"),
        "greer": ("greer", "格里尔"),
        "lutnick": ("lutnick", "卢特尼克"),
        "xi": ("xi jinping", "习近平"),
        "he-yadong": ("he yadong", "何亚东"),
        "wang-wentao": ("wang wentao", "王文涛"),
        "lacaze": ("lacaze", "拉卡泽"),
    },
    MATTER: {
        "rare-earth": ("rare earth", "rare-earth", "rare earths", "稀土"),
        "tariff": ("tariff", "tariffs", "关税"),
        "export-control": ("export control", "export controls", "export licence", "export licences",
                           "export license", "export licensing", "出口管制", "出口许可"),
        "smuggling": ("smuggled", "smuggling", "走私"),
        "truce": ("truce", "休战"),
        "anti-subsidy": ("anti-subsidy", "反补贴"),
        "anti-dumping": ("anti-dumping", "反倾销"),
        "safeguard": ("safeguard", "保障措施"),
        "listing-price": ("listing price", "挂牌价"),
        "placement": ("placement", "placing", "配售"),
        "stockpile": ("stockpile", "stockpiles", "储备", "收储"),
        "quota": ("quota", "quotas", "配额"),
        # What trade figures measure.
        "exports": ("exports", "exported", "出口量"),
        "imports": ("imports", "进口量"),
        "output": ("output", "产量"),
    },
}

# Names every story on this beat mentions: they say nothing about *which* story an article tells.
GENERIC = frozenset({"china", "us", "rare-earth", "tariff", "export-control", "white-house", "mofcom", "customs"})

# Kinds whose names, when two headlines both give some and share none, mean two stories; and the
# kinds for which whole articles (headline and body) naming only different ones do.
TITLE_CONFLICT_KINDS = (COUNTRY, REGION, GOOD, COMPANY)
TEXT_CONFLICT_KINDS = (COUNTRY, GOOD)

# Capitalised words that name no one in particular: calendar words, titles and office words.
GENERIC_CAPITALISED = frozenset("""
monday tuesday wednesday thursday friday saturday sunday january february march april may june july august
september october november december white house united states kingdom president secretary minister ministry
commerce trade treasury customs general administration commission office department council government state
national federal chief executive spokesman spokeswoman spokesperson representative section officials analysts
shares prices reuters bloomberg xinhua people party republic central bank agency bureau authority association
""".split())

CJK_RE = re.compile(r"[\u4e00-\u9fff]")
STOP_WORDS = frozenset("the a an of to in on for and or with by as at from is are was were be been has have "
                       "had its it this that after over under new says said will would could may might amid".split())
# The kind of each canonical id.
KIND_OF = {canon: kind for kind, names in GLOSSARY.items() for canon in names}


normalise = fold  # NFKC, case-folded


_WORD = re.compile(r"\w+")


class _Entity(NamedTuple):
    canon: str
    cjk: tuple[str, ...]  # CJK names: each matches as a substring
    # The first words of its Latin names that are not one word ("united states", "u.s."); a name of
    # one word is found through _CANONS_BY_WORD.
    phrase_firsts: frozenset[str]
    phrases: re.Pattern | None  # those names, each between non-word characters


def _entities() -> list[_Entity]:
    out = []
    for entities in GLOSSARY.values():
        for canon, names in entities.items():
            phrases = [n for n in names if not CJK_RE.search(n) and not _WORD.fullmatch(n)]
            # "(?<![\w])name" written as "name(?<![\w]name)": the same matches, but a pattern that
            # starts with a literal lets the regex engine skip ahead to it.
            pattern = "|".join(re.escape(n) + r"(?<![\w]" + re.escape(n) + r")(?![\w])" for n in phrases)
            out.append(_Entity(canon, tuple(n for n in names if CJK_RE.search(n)),
                               frozenset(_WORD.match(n).group() for n in phrases),
                               re.compile(pattern) if phrases else None))
    return out


def _canons_by_word() -> dict[str, tuple[str, ...]]:
    """The canonical ids each Latin name of one word names. Such a name occurs between non-word
    characters exactly when it is one of the text's words (_WORD): a set lookup finds it."""
    by_word: dict[str, list[str]] = {}
    for entities in GLOSSARY.values():
        for canon, names in entities.items():
            for name in names:
                if not CJK_RE.search(name) and _WORD.fullmatch(name):
                    by_word.setdefault(name, []).append(canon)
    return {word: tuple(canons) for word, canons in by_word.items()}


# r"\b[A-Z][a-zA-Z]{3,}\b" with the word-start test after the capital (the same matches): a
# character class first lets the regex engine skip ahead instead of testing \b everywhere.
_CAPITALISED = re.compile(r"[A-Z](?<!\w[A-Z])[a-zA-Z]{3,}\b")
# "US" in capitals is the country; case-folded it is the pronoun.
_US = re.compile(r"(?<![\w.])US(?![\w])")
_ENTITIES = _entities()


def _first_index() -> tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]]:
    """Which entities (positions in _ENTITIES) have a Latin name that is not one word starting with
    each word, and a CJK name starting with each character: a text can hold only those entities' names."""
    by_word: dict[str, list[int]] = {}
    by_char: dict[str, list[int]] = {}
    for i, entity in enumerate(_ENTITIES):
        for word in entity.phrase_firsts:
            by_word.setdefault(word, []).append(i)
        for name in entity.cjk:
            by_char.setdefault(name[0], []).append(i)
    return ({w: tuple(ids) for w, ids in by_word.items()}, {c: tuple(ids) for c, ids in by_char.items()})


_CANONS_BY_WORD = _canons_by_word()
_ENTITIES_BY_FIRST_WORD, _ENTITIES_BY_FIRST_CHAR = _first_index()
# The keys as sets: a set intersects another by walking the smaller, a dict only by walking the dict.
_ONE_WORD_NAMES = frozenset(_CANONS_BY_WORD)
_FIRST_WORDS = frozenset(_ENTITIES_BY_FIRST_WORD)
_FIRST_CHARS = frozenset(_ENTITIES_BY_FIRST_CHAR)
# Words of the glossary's Latin names: a capitalised one is already counted under its canonical id.
_GLOSSARY_WORDS = frozenset(w for entities in GLOSSARY.values() for names in entities.values() for n in names
                            for w in _WORD.findall(n))
# Headline tokens that are (part of) a glossary name: the name's canonical id stands for them.
NAME_TOKENS = _GLOSSARY_WORDS | {name[i:i + 2] for entities in GLOSSARY.values() for names in entities.values()
                                  for name in names if CJK_RE.search(name) for i in range(len(name) - 1)}
_SENTENCE_END = ".!?:;\"“”'‘’(\n"


def entities_in(text: str, names: bool = True) -> set[str]:
    """Canonical ids of the glossary names in `text`, and with `names` "name:<word>" for each
    capitalised word inside a sentence that is no glossary word and no generic word ("White",
    "House", "Tuesday"): likely a company, person or place the glossary does not know."""
    norm = normalise(text)
    # A CJK name matches as a plain substring, so its first character is in the text. Any other name
    # matches only between non-word characters, so its first word is then a whole word of the text:
    # set lookups find the names of one word and pick the few entities worth a substring test or a
    # word-boundary regex search.
    words = set(_WORD.findall(norm))
    found = {canon for word in words & _ONE_WORD_NAMES for canon in _CANONS_BY_WORD[word]}
    for i in _entities_worth_testing(norm, words):
        entity = _ENTITIES[i]
        if entity.canon not in found and (any(name in norm for name in entity.cjk)
                                          or (not words.isdisjoint(entity.phrase_firsts)
                                              and entity.phrases.search(norm))):
            found.add(entity.canon)
    if "us" in words and _US.search(text):
        found.add("us")
    if names:
        for m in _CAPITALISED.finditer(text):
            word = m.group().lower()
            if word in STOP_WORDS or word in _GLOSSARY_WORDS or word in GENERIC_CAPITALISED \
                    or _starts_sentence(text, m.start()):
                continue  # a sentence's first word is capitalised whatever it is
            found.add("name:" + word)
    return found


def _entities_worth_testing(norm: str, words: set[str]) -> set[int]:
    ids = {i for word in words & _FIRST_WORDS for i in _ENTITIES_BY_FIRST_WORD[word]}
    if CJK_RE.search(norm) is not None:
        ids.update(i for char in set(norm) & _FIRST_CHARS for i in _ENTITIES_BY_FIRST_CHAR[char])
    return ids


def _starts_sentence(text: str, start: int) -> bool:
    """Whether the text before `start` is only space, or its last other character ends a sentence."""
    i = start - 1
    while i >= 0 and text[i].isspace():
        i -= 1
    return i < 0 or text[i] in _SENTENCE_END
