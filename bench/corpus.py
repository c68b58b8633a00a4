"""Deterministic synthetic feeds for the benchmarks: RSS 2.0 / Atom, English and Chinese, some GBK.

The text is written for the bench (rare earths, tariffs, and unrelated filler news so topic
filtering has work to do). Every relevant item carries its own figures and names, so most
items are separate stories, as in a real day of wire copy.

Two corpora share the same items. "clean": every feed is well-formed RSS 2.0 or Atom 1.0 with a
correct charset label. "mixed": a third of the feeds are written the way many real publishers
write them (RSS 1.0/RDF, a DOCTYPE with HTML entities, xml:base with relative links, XHTML
content, a charset label that does not match the bytes, XML that is not well-formed); the other
two thirds are as in "clean". briefbot's lxml reader takes the RDF, xml:base and XHTML forms and
hands the other three (a sixth of the feeds) to feedparser.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from html import escape

COMPANIES_EN = ["Lynas", "MP Materials", "Iluka", "Neo Performance", "Arafura", "Energy Fuels", "Solvay",
                "Ucore", "Vulcan Elements", "Niron", "Hastings", "Pensana", "Mkango", "Aclara"]
COMPANIES_ZH = ["北方稀土", "中国稀土集团", "厦门钨业", "盛和资源", "广晟有色", "金力永磁", "宁波韵升", "正海磁材",
                "中科三环", "包钢股份", "五矿稀土", "英洛华"]
PLACES_EN = ["Baotou", "Ganzhou", "Kalgoorlie", "Mountain Pass", "Texas", "Malaysia", "Rotterdam", "Tokyo",
             "Busan", "Vancouver", "Perth", "Jiangxi", "Sichuan", "Guangxi"]
PLACES_ZH = ["包头", "赣州", "龙岩", "四川", "广西", "内蒙古", "江西", "福建", "湖南", "云南"]
METALS_EN = ["gallium", "germanium", "antimony", "dysprosium", "terbium", "NdPr oxide", "graphite",
             "yttrium", "scandium", "samarium"]
METALS_ZH = ["镓", "锗", "锑", "镝", "铽", "镨钕", "石墨", "钇", "钪", "钐"]

# Titles are assembled from independent fragments so two different stories rarely share most of
# their words (story matching treats very similar same-language titles as one story).
REL_EN_SUBJECT = ["{company}", "{place} smelters", "Magnet makers in {place}", "{company} chief executive",
                  "Traders in {place}", "Customs officials", "Japanese buyers", "European carmakers",
                  "Washington", "Beijing regulators", "{company} shareholders", "Battery suppliers"]
REL_EN_VERB = ["warn of", "brace for", "report", "flag", "scramble over", "lobby against", "welcome",
               "question", "book record", "shrug off", "seek exemptions from", "cut forecasts on"]
REL_EN_OBJECT = ["{metal} export controls", "a {pct}% tariff on {metal}", "{qty} tonnes of held {metal}",
                 "rare earth quota changes", "{money} million {metal} offtake", "magnet tariffs of {pct}%",
                 "licensing delays for {metal}", "{metal} price spike of {pct}%", "new {metal} refinery plans",
                 "trade war retaliation on {metal}"]
REL_ZH_TITLES = [
    "{company}：{place}{metal}出货量增长{pct}%，稀土价格走高",
    "{metal}进口关税上调至{pct}%，{company}称缺口达{qty}吨",
    "{company}签订{money}亿元稀土长协，原料来自{place}",
    "{metal}出口管制收紧，{place}海关滞留{qty}吨",
    "美方拟对磁材加征{pct}%关税，{company}扩建{place}工厂",
    "{place}稀土冶炼厂检修，{metal}报价单周上涨{pct}%",
    "{company}回应{metal}出口许可传闻：已获批{qty}吨",
    "贸易战阴影下{place}{metal}库存降至{qty}吨",
]
IRR_EN_TITLES = [
    "{place} council approves new cycling lanes after {qty} residents sign petition",
    "Wheat harvest in {place} ends {pct}% above last year",
    "{place} museum reopens with {qty} restored paintings",
    "Local league final in {place} draws {qty} spectators",
    "Heatwave pushes {place} electricity demand up {pct}%",
]
IRR_ZH_TITLES = [
    "{place}新开通{qty}公里城市绿道",
    "{place}小麦收获完成，产量同比增长{pct}%",
    "{place}博物馆重新开放，展出{qty}件修复文物",
    "{place}马拉松吸引{qty}名选手参赛",
    "{place}夏季用电负荷同比上升{pct}%",
]
EN_SENTENCES = [
    "Analysts in {place} said the move would tighten supply for magnet makers through the next quarter.",
    "The company said its processing line in {place} ran at {pct}% of capacity last month.",
    "Buyers in Europe and Japan have been asking for longer contracts to secure feedstock.",
    "Officials did not say when the review of licences would be completed.",
    "Spot prices for {metal} were quoted at {money} dollars per kilogram in {place} on Tuesday.",
    "Inventories at bonded warehouses fell to {qty} tonnes, according to a trade association.",
    "The measure follows months of talks between Washington and Beijing on critical minerals.",
    "Shares of {company} closed {pct}% higher after the announcement.",
]
ZH_SENTENCES = [
    "{place}分析人士表示，这一举措将在下个季度收紧磁材企业的原料供应。",
    "公司称其{place}生产线上月开工率为{pct}%。",
    "欧洲和日本买家正寻求签订更长期的合同以锁定原料。",
    "有关部门未说明许可证审查何时完成。",
    "周二{place}市场{metal}现货报价为每公斤{money}元。",
    "据行业协会统计，保税仓库库存降至{qty}吨。",
    "此前中美双方就关键矿产进行了数月磋商。",
    "消息公布后，{company}股价收涨{pct}%。",
]
FILLER_EN = ["The weather service expects mild temperatures over the weekend.",
             "Organisers said tickets for next season go on sale in March.",
             "Volunteers helped clear the riverside path on Saturday morning.",
             "The council will publish the full plan on its website next week."]
FILLER_ZH = ["气象部门预计周末气温温和。", "主办方表示下赛季门票将于三月开售。",
             "志愿者周六上午清理了河滨步道。", "市政部门将于下周在官网公布完整方案。"]


@dataclass
class Item:
    guid: str
    title: str
    body: str
    link: str
    published: datetime
    relevant: bool


@dataclass
class FeedSpec:
    index: int
    path: str  # /feeds/fNNNN.xml
    kind: str  # rss | atom
    lang: str  # en | zh
    encoding: str  # the bytes' real charset: utf-8 | gbk | cp1252
    items: list[Item]
    variant: str = ""  # "" (clean) or one of VARIANTS
    label: str = ""  # the charset the XML declaration and Content-Type claim ("" = the real one)

    @property
    def name(self) -> str:
        return f"f{self.index:04d}"

    @property
    def content_type(self) -> str:
        base = "application/atom+xml" if self.kind == "atom" else "application/rss+xml"
        return f"{base}; charset={self.label or self.encoding}"


def _fill(template: str, rng: random.Random, lang: str, serial: int) -> str:
    zh = lang == "zh"
    return template.format(
        company=rng.choice(COMPANIES_ZH if zh else COMPANIES_EN),
        place=rng.choice(PLACES_ZH if zh else PLACES_EN),
        metal=rng.choice(METALS_ZH if zh else METALS_EN),
        # Figures derived from the item's serial: consistent inside one article, and different
        # stories rarely share an exact number (as in real copy), so matching is not trivially fooled.
        pct=f"{2 + (serial * 7919) % 5800 / 100:.2f}",
        qty=f"{1 + serial % 89},{(serial * 13) % 1000:03d}",
        money=f"{100 + (serial * 31) % 9000}",
    )


def make_item(rng: random.Random, lang: str, relevant: bool, serial: int, link_base: str,
              published: datetime, guid_prefix: str, paragraphs: int = 5) -> Item:
    zh = lang == "zh"
    if relevant and not zh:
        template = " ".join(rng.choice(part) for part in (REL_EN_SUBJECT, REL_EN_VERB, REL_EN_OBJECT))
    else:
        template = rng.choice(REL_ZH_TITLES if relevant else (IRR_ZH_TITLES if zh else IRR_EN_TITLES))
    title = _fill(template, rng, lang, serial)
    title = title[0].upper() + title[1:]
    pool = (ZH_SENTENCES if zh else EN_SENTENCES) if relevant else (FILLER_ZH if zh else FILLER_EN)
    sentences = [_fill(rng.choice(pool), rng, lang, serial) for _ in range(paragraphs * 2)]
    sep = "" if zh else " "
    paras = [sep.join(sentences[i:i + 2]) for i in range(0, len(sentences), 2)]
    body = "".join(f"<p>{escape(p)}</p>" for p in [title + ("。" if zh else ".")] + paras)
    guid = f"{guid_prefix}-{serial}"
    return Item(guid=guid, title=title, body=body, link=f"{link_base}/{guid}.html", published=published,
                relevant=relevant)


def render_feed(spec: FeedSpec, now: datetime | None = None, items: list[Item] | None = None) -> bytes:
    items = spec.items if items is None else items
    if spec.variant:
        return render_variant(spec, items)
    title = f"Bench wire {spec.name}" if spec.lang == "en" else f"测试资讯 {spec.name}"
    if spec.kind == "atom":
        parts = []
        for it in items:
            stamp = it.published.isoformat().replace("+00:00", "Z")
            parts.append(f"<entry><title>{escape(it.title)}</title><id>urn:bench:{escape(it.guid)}</id>"
                         f'<link href="{escape(it.link)}"/><updated>{stamp}</updated><published>{stamp}</published>'
                         f'<content type="html">{escape(it.body)}</content></entry>')
        updated = (max((i.published for i in items), default=now or datetime(2026, 1, 1, tzinfo=timezone.utc))
                   .isoformat().replace("+00:00", "Z"))
        text = (f'<?xml version="1.0" encoding="{spec.encoding}"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
                f"<title>{escape(title)}</title><id>urn:bench:{spec.name}</id><updated>{updated}</updated>"
                f"{''.join(parts)}</feed>")
    else:
        parts = []
        for it in items:
            parts.append(f"<item><title>{escape(it.title)}</title><link>{escape(it.link)}</link>"
                         f'<guid isPermaLink="false">{escape(it.guid)}</guid>'
                         f"<pubDate>{format_datetime(it.published)}</pubDate>"
                         f"<description>{escape(it.body)}</description></item>")
        text = (f'<?xml version="1.0" encoding="{spec.encoding}"?>\n<rss version="2.0"><channel>'
                f"<title>{escape(title)}</title><link>https://bench.example/{spec.name}/</link>"
                f"<description>bench</description>{''.join(parts)}</channel></rss>")
    return text.encode(spec.encoding)


def make_corpus(n_feeds: int, items_per_feed: int, relevant_share: float = 0.25, seed: int = 8,
                now: datetime | None = None, mixed: bool = False) -> list[FeedSpec]:
    """Feeds 0..n-1: every 3rd is Atom; 30% Chinese, of which a third GBK-encoded RSS.

    Items are spread over the last 20 hours (inside the default 24 h max_age), so a cold poll
    really processes them instead of recording them as too old. `mixed`: every third feed (index
    2, 5, 8, ...) is written in one of VARIANTS in turn, with the same items as in the clean corpus.
    """
    rng = random.Random(seed)
    now = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    feeds = []
    serial = 0
    for i in range(n_feeds):
        lang = "zh" if i % 10 in (2, 5, 8) else "en"
        gbk = lang == "zh" and i % 10 == 8
        kind = "rss" if gbk else ("atom" if i % 3 == 1 else "rss")
        spec = FeedSpec(index=i, path=f"/feeds/f{i:04d}.xml", kind=kind, lang=lang,
                        encoding="gbk" if gbk else "utf-8", items=[])
        for j in range(items_per_feed):
            serial += 1
            published = now - timedelta(minutes=rng.randint(1, 20 * 60))
            spec.items.append(make_item(rng, lang, rng.random() < relevant_share, serial,
                                        f"https://news{i % 50}.example/{spec.name}", published, spec.name))
        spec.items.sort(key=lambda it: it.published, reverse=True)
        if mixed and i % 3 == 2:
            _make_variant(spec, VARIANTS[(i // 3) % len(VARIANTS)])
        feeds.append(spec)
    return feeds


# --------------------------------------------------------------------------- the mixed corpus

VARIANTS = ("rdf", "doctype", "xmlbase", "xhtml", "mislabelled", "broken")


def _make_variant(spec: FeedSpec, variant: str) -> None:
    spec.variant = variant
    spec.kind = "atom" if variant in ("xmlbase", "xhtml") else "rss"
    if variant == "mislabelled":
        # GBK bytes declared UTF-8 (Chinese publishers), or Windows-1252 bytes declared UTF-8.
        spec.encoding, spec.label = ("gbk" if spec.lang == "zh" else "cp1252"), "utf-8"


def _stamp(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def _channel_title(spec: FeedSpec) -> str:
    return f"Bench wire {spec.name}" if spec.lang == "en" else f"测试资讯 {spec.name}"


def render_variant(spec: FeedSpec, items: list[Item]) -> bytes:
    """The feed in its mixed-corpus form; entries carry the same title, link, id, date and text."""
    render = {"rdf": _render_rdf, "doctype": _render_doctype, "xmlbase": _render_xmlbase,
              "xhtml": _render_xhtml, "mislabelled": _render_mislabelled, "broken": _render_broken}
    text = render[spec.variant](spec, items)
    return text.encode(spec.encoding)


def _render_rdf(spec: FeedSpec, items: list[Item]) -> str:
    """RSS 1.0: RDF with a Seq of the items; dates in Dublin Core."""
    home = f"https://bench.example/{spec.name}/"
    seq = "".join(f'<rdf:li rdf:resource="{escape(it.link)}"/>' for it in items)
    body = "".join(f'<item rdf:about="{escape(it.link)}"><title>{escape(it.title)}</title>'
                   f"<link>{escape(it.link)}</link><description>{escape(it.body)}</description>"
                   f"<dc:date>{_stamp(it.published)}</dc:date></item>" for it in items)
    return (f'<?xml version="1.0" encoding="{spec.encoding}"?>\n'
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/">'
            f'<channel rdf:about="{home}"><title>{escape(_channel_title(spec))}</title><link>{home}</link>'
            f"<description>bench</description><items><rdf:Seq>{seq}</rdf:Seq></items></channel>{body}</rdf:RDF>")


def _rss_items(items: list[Item], description) -> str:
    return "".join(f"<item><title>{escape(it.title)}</title><link>{escape(it.link)}</link>"
                   f'<guid isPermaLink="false">{escape(it.guid)}</guid>'
                   f"<pubDate>{format_datetime(it.published)}</pubDate>"
                   f"<description>{description(it)}</description></item>" for it in items)


def _render_doctype(spec: FeedSpec, items: list[Item]) -> str:
    """The old Netscape DOCTYPE, with HTML entities that only a DTD (or a forgiving reader) knows."""
    return (f'<?xml version="1.0" encoding="{spec.encoding}"?>\n'
            '<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
            '"http://my.netscape.com/publish/formats/rss-0.91.dtd">\n'
            f"<rss version=\"0.91\"><channel><title>{escape(_channel_title(spec))}</title>"
            f"<link>https://bench.example/{spec.name}/</link>"
            "<description>Metals &amp; trade &mdash; daily&nbsp;wire</description><language>en</language>"
            f"{_rss_items(items, lambda it: escape(it.body))}</channel></rss>")


def _render_mislabelled(spec: FeedSpec, items: list[Item]) -> str:
    # The declaration says UTF-8; the bytes are spec.encoding. The dash is not UTF-8 in Windows-1252.
    return (f'<?xml version="1.0" encoding="{spec.label}"?>\n<rss version="2.0"><channel>'
            f"<title>{escape(_channel_title(spec))}</title><link>https://bench.example/{spec.name}/</link>"
            f"<description>Metals \u2014 trade</description>"
            f"{_rss_items(items, lambda it: escape(it.body))}</channel></rss>")


def _render_broken(spec: FeedSpec, items: list[Item]) -> str:
    """Not well-formed: a bare ampersand, and item HTML pasted in unescaped with an unclosed <br>."""
    return (f'<?xml version="1.0" encoding="{spec.encoding}"?>\n<rss version="2.0"><channel>'
            f"<title>{escape(_channel_title(spec))} & friends</title>"
            f"<link>https://bench.example/{spec.name}/</link><description>bench</description>"
            f"{_rss_items(items, lambda it: it.body + '<br>')}</channel></rss>")


def _atom_document(spec: FeedSpec, entries: str, items: list[Item], base: str = "") -> str:
    updated = _stamp(max((i.published for i in items), default=datetime(2026, 1, 1, tzinfo=timezone.utc)))
    xml_base = f' xml:base="{escape(base)}"' if base else ""
    return (f'<?xml version="1.0" encoding="{spec.encoding}"?>\n<feed xmlns="http://www.w3.org/2005/Atom"'
            f"{xml_base}><title>{escape(_channel_title(spec))}</title><id>urn:bench:{spec.name}</id>"
            f"<updated>{updated}</updated>{entries}</feed>")


def _render_xmlbase(spec: FeedSpec, items: list[Item]) -> str:
    """Entry links relative to the document's xml:base."""
    base = f"https://news{spec.index % 50}.example/"
    entries = "".join(
        f"<entry><title>{escape(it.title)}</title><id>urn:bench:{escape(it.guid)}</id>"
        f'<link href="{escape(it.link.removeprefix(base))}"/><updated>{_stamp(it.published)}</updated>'
        f'<content type="html">{escape(it.body)}</content></entry>' for it in items)
    return _atom_document(spec, entries, items, base=base)


def _render_xhtml(spec: FeedSpec, items: list[Item]) -> str:
    """Content as inline XHTML rather than escaped HTML."""
    entries = "".join(
        f"<entry><title>{escape(it.title)}</title><id>urn:bench:{escape(it.guid)}</id>"
        f'<link href="{escape(it.link)}"/><updated>{_stamp(it.published)}</updated>'
        f'<content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">{it.body}</div></content></entry>'
        for it in items)
    return _atom_document(spec, entries, items)


def corpus_note(feeds: list[FeedSpec]) -> str:
    """One line saying what the corpus is made of."""
    n = len(feeds) or 1
    zh = sum(f.lang == "zh" for f in feeds)
    variants = sum(bool(f.variant) for f in feeds)
    shape = (f"{variants / n:.0%} in other forms real publishers use ({', '.join(VARIANTS)}), the rest clean "
             "RSS 2.0 + Atom" if variants else "clean RSS 2.0 + Atom")
    gbk = sum(f.encoding == "gbk" for f in feeds)
    return f"{shape}; {zh / n:.0%} Chinese ({gbk / n:.0%} GBK)"
