"""A labelled set of article pairs for story matching: the same story told twice, and near misses.

Written for this project (rare earths and tariffs, English and Chinese). Same-story pairs come
from different outlets, with different headlines and, across languages, different spellings of
one figure (8000万港元 / HK$80 million, 61.5万元/吨 / 615,000 yuan per tonne). Near misses must
stay apart: the same template and figure about another subject; the same subject later with a new
figure; two tariff actions announced the same day; one official speaking on two topics. Every
pair comes from two different feeds, so the set measures the matching itself, not the rule that
keeps one feed's items apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CJK = re.compile(r"[\u4e00-\u9fff]")

# The kinds of near miss (pairs that must stay apart).
OTHER_SUBJECT = "same template and figure, other subject"
LATER = "same subject later, new figure"
SAME_DAY = "two tariff actions the same day"
ONE_OFFICIAL = "one official, two topics"


@dataclass(frozen=True)
class Article:
    feed: str
    title: str
    body: str
    hours: float = 0.0  # published this many hours after the set's reference time

    @property
    def lang(self) -> str:
        return "zh" if _CJK.search(self.title) else "en"


@dataclass(frozen=True)
class Pair:
    a: Article
    b: Article
    same: bool
    kind: str  # for a same-story pair, its languages ("en-zh"); otherwise one of the kinds above


def _same(a: Article, b: Article) -> Pair:
    return Pair(a, b, True, "-".join(sorted((a.lang, b.lang))))


def _apart(kind: str, a: Article, b: Article) -> Pair:
    return Pair(a, b, False, kind)


A, B, C = "en-wire", "en-desk", "en-post"
X, Y, Z = "zh-wire", "zh-desk", "zh-daily"

# --------------------------------------------------------------------------- stories, told several ways

MAGNET_A = Article(A, "China approves rare earth magnet export licences for 12 European firms",
                   "China's commerce ministry approved rare earth magnet export licences for 12 European companies "
                   "on Friday. NdPr oxide prices rose 4.5% to 615,000 yuan per tonne after the news.")
MAGNET_B = Article(B, "Beijing clears magnet shipments to a dozen EU companies",
                   "The Commerce Ministry in Beijing granted export licences for rare earth magnets to 12 European "
                   "firms, people familiar with the matter said. NdPr oxide gained 4.5% to 615,000 yuan a tonne.", 2)
MAGNET_X = Article(X, "商务部批准12家欧洲企业稀土磁体出口许可",
                   "商务部表示已批准12家欧洲企业的稀土磁体出口许可申请。氧化镨钕价格上涨4.5%，报61.5万元/吨。", 1)
MAGNET_Y = Article(Y, "12家欧企获得稀土磁材出口许可 氧化镨钕涨4.5%",
                   "据商务部消息，12家欧洲企业的稀土磁体出口申请已获批准，氧化镨钕价格随之上涨4.5%至每吨61.5万元。", 3)

STEEL_A = Article(A, "US to impose 25% tariff on Canadian steel",
                  "The White House said on Tuesday that the United States will impose a 25% tariff on steel "
                  "imported from Canada from March 12, citing national security.")
STEEL_B = Article(B, "Washington slaps 25% tariff on steel from Canada",
                  "President Trump signed an order on Tuesday placing a 25% tariff on Canadian steel, effective "
                  "March 12. Ottawa said it would respond to the tariffs.", 1)
STEEL_X = Article(X, "美国宣布对加拿大钢铁征收25%关税",
                  "白宫周二表示，美国将自3月12日起对从加拿大进口的钢铁征收25%的关税，理由是国家安全。", 2)
STEEL_Y = Article(Y, "白宫：3月12日起对加拿大钢铁加征25%关税",
                  "美国总统特朗普周二签署命令，对加拿大钢铁加征25%关税，3月12日生效。加拿大表示将作出回应。", 3)

LYNAS_A = Article(A, "Lynas to build $500 million heavy rare earth plant in Texas",
                  "Lynas Rare Earths will spend $500 million on a heavy rare earths separation plant in Seadrift, "
                  "Texas, the company said, with output of 5,000 tonnes a year.")
LYNAS_C = Article(C, "Australia's Lynas commits US$500m to Texas processing facility",
                  "Australian miner Lynas said it would invest $500 million in a Texas plant able to process "
                  "5,000 tonnes of rare earths a year, backed by the Pentagon.", 4)
LYNAS_X = Article(X, "莱纳斯斥资5亿美元在得州建重稀土工厂",
                  "澳大利亚莱纳斯公司表示，将投资5亿美元在美国得克萨斯州建设重稀土分离厂，年产能5000吨。", 5)

ANTIMONY_A = Article(A, "Customs seize 30 tonnes of smuggled antimony in Guangdong",
                     "Customs officers in Guangdong seized 30 tonnes of antimony ingots declared as zinc alloy, the "
                     "General Administration of Customs said. Antimony export controls took effect last year.")
ANTIMONY_C = Article(C, "Chinese customs intercept antimony smuggling ring, 30 tonnes seized",
                     "Customs in Guangdong broke up a smuggling ring and seized 30 tonnes of antimony disguised as "
                     "zinc alloy and bound for Vietnam, in breach of rare earth and metal export controls.", 6)
ANTIMONY_X = Article(X, "广东海关查获走私锑锭30吨",
                     "海关总署称，广东海关查获一批伪报为锌合金的锑锭，共计30吨。锑自去年起实施出口管制。", 2)
ANTIMONY_Y = Article(Y, "30吨锑锭伪报锌合金闯关 被海关截获",
                     "广东海关近日截获一批以锌合金名义申报的锑锭，重达30吨，涉嫌走私出口，违反出口管制规定。", 8)

GALLIUM_A = Article(A, "China bans gallium and germanium exports to the United States",
                    "China's commerce ministry banned exports of gallium, germanium and antimony to the United "
                    "States on Tuesday, escalating a tech dispute. Gallium prices jumped 12% in Rotterdam.")
GALLIUM_B = Article(B, "Beijing halts gallium, germanium shipments to US",
                    "Beijing said on Tuesday it would stop shipments of gallium and germanium to the US, citing "
                    "military end uses. Gallium in Rotterdam rose 12% on the news.", 1)
GALLIUM_X = Article(X, "商务部：禁止镓、锗、锑对美出口",
                    "商务部周二宣布，禁止镓、锗、锑等两用物项对美国出口。消息公布后，鹿特丹镓价上涨12%。", 1)
GALLIUM_Y = Article(Y, "中国宣布禁止对美国出口镓锗锑 出口管制再升级",
                    "中国商务部发布公告，原则上不予许可镓、锗、锑对美出口，鹿特丹市场镓价应声上涨12%。", 2)

TRUCE_A = Article(A, "US and China extend tariff truce by 90 days",
                  "Washington and Beijing agreed to extend their tariff truce by 90 days, keeping a 10% baseline "
                  "tariff in place, officials said after talks in Stockholm.")
TRUCE_B = Article(B, "Trade truce between Washington and Beijing gets another 90 days",
                  "The world's two largest economies prolonged their tariff truce for a further 90 days after talks "
                  "in Stockholm; the 10% baseline tariffs stay.", 3)
TRUCE_X = Article(X, "中美同意将关税休战延长90天",
                  "中美双方在斯德哥尔摩会谈后同意将关税休战期延长90天，10%的基准关税继续保留。", 2)
TRUCE_Y = Article(Y, "中美斯德哥尔摩会谈：关税休战期再延90天",
                  "中美经贸会谈在斯德哥尔摩结束，双方同意将暂停加征关税的安排延长90天，10%的关税维持不变。", 4)

CANOLA_A = Article(A, "China imposes 100% tariff on Canadian canola oil",
                   "China will impose a 100% tariff on canola oil and peas imported from Canada from March 20, the "
                   "commerce ministry said, in retaliation for Ottawa's tariffs on Chinese EVs.")
CANOLA_B = Article(B, "Beijing hits back at Ottawa with 100% tariffs on canola oil, peas",
                   "Beijing said it would levy 100% tariffs on Canadian canola oil and peas starting March 20, "
                   "responding to Canada's tariffs on Chinese electric vehicles and steel.", 2)
CANOLA_X = Article(X, "中方对加拿大菜籽油加征100%关税",
                   "商务部宣布，自3月20日起对原产于加拿大的菜籽油和豌豆加征100%关税，以回应加方对中国电动汽车加征关税。", 1)
CANOLA_Y = Article(Y, "商务部回击加拿大：菜籽油、豌豆加征100%关税",
                   "针对加拿大对中国电动汽车和钢铝产品加征关税，商务部决定对加拿大菜籽油、豌豆加征100%关税。", 3)

LISTING_A = Article(A, "China Northern Rare Earth raises NdPr listing price to 570,000 yuan",
                    "China Northern Rare Earth set its NdPr oxide listing price for December at 570,000 yuan per "
                    "tonne, up 6.3% from November.")
LISTING_B = Article(B, "Northern Rare Earth lifts December NdPr price 6.3%",
                    "Baotou-based China Northern Rare Earth raised its monthly listing price for NdPr oxide by 6.3% "
                    "to 570,000 yuan a tonne.", 2)
LISTING_X = Article(X, "北方稀土12月氧化镨钕挂牌价上调至57万元/吨",
                    "北方稀土公布12月稀土产品挂牌价，氧化镨钕报57万元/吨，较11月上调6.3%。", 1)
LISTING_Y = Article(Y, "北方稀土12月挂牌价出炉：氧化镨钕上涨6.3%",
                    "北方稀土发布12月挂牌价格，氧化镨钕挂牌价为每吨57万元，环比上涨6.3%。", 3)

PROBE_A = Article(A, "EU launches anti-subsidy probe into Chinese rare earth magnets",
                  "The European Commission opened an investigation into subsidies for Chinese rare earth permanent "
                  "magnets, which made up 90% of EU imports worth €2.1 billion last year, and may add tariffs.")
PROBE_B = Article(B, "Brussels targets Chinese magnets in new subsidy investigation",
                  "Brussels began an anti-subsidy investigation into rare earth permanent magnets from China that "
                  "could end in tariffs; Chinese suppliers provided 90% of the bloc's €2.1 billion of imports.", 5)
PROBE_X = Article(X, "欧盟对中国稀土永磁体发起反补贴调查",
                  "欧盟委员会对原产于中国的稀土永磁体发起反补贴调查，可能加征关税。去年中国产品占欧盟进口的90%，金额达21亿欧元。", 3)

PLACING_A = Article(A, "JL Mag raises HK$80 million in Hong Kong share placement",
                    "Rare earth magnet maker JL Mag raised HK$80 million by placing 10 million new H shares in Hong "
                    "Kong at HK$8 each, to fund a magnet plant in Mexico.")
PLACING_X = Article(X, "金力永磁配售1000万股H股 募资8000万港元",
                    "稀土永磁企业金力永磁在香港以每股8港元配售1000万股新H股，募资8000万港元，用于墨西哥磁材工厂建设。", 2)
PLACING_Y = Article(Y, "金力永磁完成H股配售，募资8000万港元建墨西哥工厂",
                    "金力永磁公告称，已完成1000万股H股配售，配售价每股8港元，所得8000万港元将投向墨西哥稀土磁材项目。", 4)

EXPORTS_A = Article(A, "China's rare earth exports slump 25% to 12,000 tonnes in November",
                    "China exported 12,000 tonnes of rare earths in November, down 25% from a year earlier, customs "
                    "data showed, as export controls slowed shipments.")
EXPORTS_B = Article(B, "Rare earth shipments from China fall by a quarter as controls bite",
                    "Customs figures showed China's rare earth exports dropped 25% year on year to 12,000 tonnes "
                    "last month under the new export controls.", 6)
EXPORTS_X = Article(X, "11月中国稀土出口量降至1.2万吨 同比下降25%",
                    "海关总署数据显示，11月中国稀土出口量为1.2万吨，同比下降25%，出口管制影响显现。", 3)

STOCKPILE_A = Article(A, "Japan to stockpile dysprosium and terbium as China curbs bite",
                      "Japan's trade ministry will fund a national stockpile of dysprosium and terbium for magnet "
                      "makers, officials said, after China tightened export licensing for heavy rare earths.")
STOCKPILE_C = Article(C, "Tokyo plans heavy rare earth stockpile of dysprosium, terbium",
                      "The Japanese government plans to build stockpiles of dysprosium and terbium for its magnet "
                      "makers, the trade ministry said, as Chinese export licences slow.", 5)

MYANMAR_A = Article(A, "Myanmar rare earth mines halt, China's imports drop 40%",
                    "Fighting in Kachin state halted rare earth mining in Myanmar; China's imports of rare earth "
                    "ores from Myanmar fell 40% to 3,100 tonnes last month.")
MYANMAR_X = Article(X, "缅甸稀土矿停产 中国自缅进口下降40%",
                    "受克钦邦冲突影响，缅甸稀土矿开采停止，上月中国自缅甸进口稀土矿降至3100吨，下降40%。", 4)
MYANMAR_Y = Article(Y, "克钦邦战事致缅甸稀土断供 上月进口量仅3100吨",
                    "缅甸克钦邦冲突导致稀土矿停产，中国上月自缅甸进口稀土矿3100吨，较前月下降40%。", 6)

# --------------------------------------------------------------------------- near misses

AVOCADO_C = Article(C, "US to impose 25% tariff on Mexican avocados",
                    "The White House said on Tuesday that the United States will impose a 25% tariff on avocados "
                    "imported from Mexico from March 12, citing national security.")
AVOCADO_Z = Article(Z, "美国宣布对墨西哥牛油果征收25%关税",
                    "白宫周二表示，美国将自3月12日起对从墨西哥进口的牛油果征收25%的关税，理由是国家安全。", 1)
GRAPHITE_C = Article(C, "China bans graphite exports to the United States",
                     "China's commerce ministry banned exports of graphite to the United States on Tuesday, adding "
                     "to its controls on rare earths. Graphite prices jumped 12% in Rotterdam.", 1)
SOY_A = Article(A, "China raises tariffs 25% on US soybeans",
                "Beijing will raise tariffs on US soybeans to 25% from next month, the commerce ministry said.")
EVS_C = Article(C, "US raises tariffs 25% on Chinese EVs",
                "Washington will raise tariffs on Chinese electric vehicles to 25% from next month, the White House "
                "said.", 3)
GALLIUM_SEIZED_C = Article(C, "Customs seize 30 tonnes of smuggled gallium in Guangxi",
                           "Customs officers in Guangxi seized 30 tonnes of gallium declared as aluminium scrap, the "
                           "General Administration of Customs said. Gallium export controls took effect last year.", 2)
RE_SEIZED_Z = Article(Z, "江西海关查获走私稀土30吨",
                      "海关总署称，江西海关查获一批伪报为普通矿砂的稀土，共计30吨。稀土自去年起实施出口管制。", 3)
MP_OUTPUT_C = Article(C, "MP Materials quarterly rare earth output rises 12%",
                      "MP Materials said rare earth oxide output at Mountain Pass rose 12% in the quarter to 13,000 "
                      "tonnes, as it expands magnet making in Texas.")
LYNAS_OUTPUT_A = Article(A, "Lynas quarterly rare earth output rises 12%",
                         "Lynas Rare Earths said rare earth oxide output in Malaysia rose 12% in the quarter to "
                         "13,000 tonnes, as it expands heavy rare earth separation.", 4)
JAPAN_DEAL_A = Article(A, "Japan signs $500 million rare earth supply deal with Lynas",
                       "Japan's state agency JOGMEC agreed a $500 million rare earth supply deal with Lynas, securing "
                       "heavy rare earths for Japanese magnet makers.")
KOREA_DEAL_C = Article(C, "South Korea signs $500 million rare earth supply deal with Lynas",
                       "South Korea's state agency KOMIR agreed a $500 million rare earth supply deal with Lynas, "
                       "securing heavy rare earths for Korean magnet makers.", 5)
BUSES_C = Article(C, "EU launches anti-subsidy probe into Chinese electric buses",
                  "The European Commission opened an investigation into subsidies for Chinese electric buses, which "
                  "made up 90% of EU imports worth €2.1 billion last year, and may add tariffs.", 2)
INDIA_STEEL_A = Article(A, "India imposes 12% safeguard tariff on steel imports",
                        "India will impose a 12% safeguard tariff on flat steel imports for 200 days to shield mills "
                        "from cheap shipments from China, the finance ministry said.")
VIETNAM_STEEL_C = Article(C, "Vietnam imposes 12% safeguard tariff on steel imports",
                          "Vietnam will impose a 12% safeguard tariff on flat steel imports for 200 days to shield "
                          "mills from cheap shipments from China, the trade ministry said.", 6)
GERMANIUM_Z = Article(Z, "商务部：禁止锗对日出口",
                      "商务部周二宣布，禁止锗等两用物项对日本出口。消息公布后，鹿特丹锗价上涨12%。", 2)

MAGNET_LATER_C = Article(C, "China approves rare earth magnet export licences for 9 more European firms",
                         "China's commerce ministry approved rare earth magnet export licences for 9 more European "
                         "companies on Friday. NdPr oxide prices rose 1.2% to 622,000 yuan per tonne.", 168)
MAGNET_LATER_Z = Article(Z, "商务部再批准9家欧洲企业稀土磁体出口许可",
                         "商务部表示又批准9家欧洲企业的稀土磁体出口许可申请。氧化镨钕价格上涨1.2%，报62.2万元/吨。", 170)
STEEL_LATER_C = Article(C, "US raises tariff on Canadian steel to 50%",
                        "The White House said on Tuesday that the United States will double the tariff on steel "
                        "imported from Canada to 50% from March 19, citing national security.", 168)
STEEL_LATER_Z = Article(Z, "美国将加拿大钢铁关税提高至50%",
                        "白宫周二表示，美国将自3月19日起把从加拿大进口钢铁的关税提高至50%。", 169)
ANTIMONY_LATER_C = Article(C, "Customs seize 12 tonnes of smuggled antimony in Guangdong",
                           "Customs officers in Guangdong seized 12 tonnes of antimony ingots declared as lead "
                           "alloy, the General Administration of Customs said.", 170)
LISTING_LATER_C = Article(C, "China Northern Rare Earth raises NdPr listing price to 590,000 yuan",
                          "China Northern Rare Earth set its NdPr oxide listing price for January at 590,000 yuan "
                          "per tonne, up 3.5% from December.", 30)
EXPORTS_LATER_Z = Article(Z, "12月中国稀土出口量回升至1.5万吨 同比增长8%",
                          "海关总署数据显示，12月中国稀土出口量为1.5万吨，同比增长8%，出口管制影响减弱。", 720)
GALLIUM_PRICE_A = Article(A, "Gallium price hits $1,000 per kilogram in Rotterdam",
                          "Gallium traded at $1,000 per kilogram in Rotterdam, up 25% in a week, as Chinese export "
                          "controls kept metal off the market.")
GALLIUM_PRICE_LATER_C = Article(C, "Gallium price climbs to $1,150 per kilogram in Rotterdam",
                                "Gallium traded at $1,150 per kilogram in Rotterdam, up 15% in a week, as Chinese "
                                "export controls kept metal off the market.", 168)

PACKAGE = ("announced by the White House on Tuesday as part of a Section 301 package covering $18 billion of "
           "Chinese imports")
EV_TARIFF_A = Article(A, "US raises tariffs on Chinese EVs to 100%",
                      f"Tariffs on Chinese electric vehicles will quadruple to 100% this year, {PACKAGE}.")
SOLAR_TARIFF_C = Article(C, "US doubles tariffs on Chinese solar cells to 50%",
                         f"Tariffs on Chinese solar cells will double to 50% this year, {PACKAGE}.", 1)
CHIPS_TARIFF_B = Article(B, "US lifts tariff on Chinese semiconductors to 50% by 2025",
                         f"Tariffs on Chinese semiconductors will rise to 50% by 2025, {PACKAGE}.", 2)
MAGNET_TARIFF_C = Article(C, "US to levy 25% tariff on Chinese permanent magnets from 2026",
                          f"Tariffs on Chinese rare earth permanent magnets will rise to 25% in 2026, {PACKAGE}.", 1)
COAL_A = Article(A, "China adds 15% tariff on US coal and LNG",
                 "China will impose a 15% tariff on coal and liquefied natural gas from the United States from "
                 "February 10, the finance ministry said on Tuesday, in response to US tariffs.")
CRUDE_C = Article(C, "China puts 10% tariff on US crude oil and farm machinery",
                  "China will impose a 10% tariff on crude oil, farm machinery and large-engine cars from the United "
                  "States from February 10, the finance ministry said on Tuesday, in response to US tariffs.", 1)
COAL_Z = Article(Z, "中方对美国煤炭、液化天然气加征15%关税",
                 "国务院关税税则委员会周二宣布，自2月10日起对原产于美国的煤炭、液化天然气加征15%关税。", 1)
CRUDE_Y = Article(Y, "中方对美国原油、农业机械加征10%关税",
                  "国务院关税税则委员会周二宣布，自2月10日起对原产于美国的原油、农业机械、大排量汽车加征10%关税。", 2)
SOLAR_TARIFF_Z = Article(Z, "美国将中国太阳能电池关税提高至50%",
                         "白宫周二宣布，将中国太阳能电池的关税提高一倍至50%，这是涉及180亿美元中国商品的301条款关税措施的一部分。", 2)
ORANGE_A = Article(A, "Canada retaliates with 25% tariff on US orange juice",
                   "Ottawa will impose a 25% tariff on orange juice from the United States from Tuesday, the finance "
                   "minister said, answering US tariffs.")
APPLIANCES_C = Article(C, "Canada hits US washing machines with 25% tariff",
                       "Ottawa will impose a 25% tariff on washing machines from the United States from Tuesday, the "
                       "finance minister said, answering US tariffs.", 2)

BESSENT_GENEVA_A = Article(A, "Bessent says Geneva tariff talks with China were productive",
                           "Treasury Secretary Scott Bessent said on Monday that two days of tariff talks with Chinese "
                           "officials in Geneva had been productive and that a joint statement would follow.")
BESSENT_YEN_C = Article(C, "Bessent says US will not rule out tariffs on Japanese cars",
                        "Treasury Secretary Scott Bessent said on Monday the United States would not rule out "
                        "tariffs on Japanese cars if trade talks with Tokyo stall.", 3)
BESSENT_YEN_Z = Article(Z, "贝森特：美方不排除对日本汽车加征关税",
                        "美国财政部长贝森特周一表示，如果与日本的贸易谈判陷入僵局，美方不排除对日本汽车加征关税。", 4)
HE_LICENCE_X = Article(X, "商务部新闻发言人：稀土出口许可审批时限为45个工作日",
                       "商务部新闻发言人何亚东周四表示，稀土出口许可申请的法定审批时限为45个工作日，符合规定的申请将予以批准。")
HE_BUSES_Z = Article(Z, "商务部新闻发言人：中方坚决反对欧盟对电动大巴反补贴调查",
                     "商务部新闻发言人何亚东周四表示，欧盟对中国电动大巴发起反补贴调查，中方坚决反对，并将采取必要措施，包括加征关税。", 1)
HE_LICENCE_A = Article(A, "China says rare earth licence reviews take 45 working days",
                       "Commerce ministry spokesman He Yadong said on Thursday that rare earth export licence "
                       "applications are reviewed within 45 working days and compliant ones are approved.")
HE_BUSES_C = Article(C, "China vows to respond to EU probe into electric buses",
                     "Commerce ministry spokesman He Yadong said on Thursday that China firmly opposes the EU "
                     "anti-subsidy probe into Chinese electric buses and may respond with tariffs.", 1)
TRUMP_STEEL_A = Article(A, "Trump says tariffs on Canadian steel will stay at 25%",
                        "President Trump told reporters at the White House on Friday that tariffs on Canadian steel "
                        "would stay at 25% until Ottawa opens its dairy market.")
TRUMP_VISIT_C = Article(C, "Trump says he will visit Beijing in April for trade talks",
                        "President Trump told reporters at the White House on Friday that he would travel to Beijing "
                        "in April to discuss tariffs and soybean purchases with Xi Jinping.", 1)
LACAZE_MALAYSIA_A = Article(A, "Lynas chief says Malaysia plant running at 80% of capacity",
                            "Lynas chief executive Amanda Lacaze said on Wednesday the Malaysia rare earth plant was "
                            "running at 80% of capacity after a maintenance shutdown.")
LACAZE_TEXAS_C = Article(C, "Lynas chief warns Texas rare earth plant faces permit delays",
                         "Lynas chief executive Amanda Lacaze said on Wednesday the planned Texas rare earth plant "
                         "faced permit delays and its cost could rise above $500 million.", 1)
GREER_SHIPS_A = Article(A, "USTR Greer says shipbuilding probe will end in port fees, not tariffs",
                        "US Trade Representative Jamieson Greer said on Wednesday the Section 301 probe into Chinese "
                        "shipbuilding would end in port fees on Chinese-built vessels rather than tariffs.")
GREER_STEEL_C = Article(C, "USTR Greer rules out tariff relief for Canadian steel",
                        "US Trade Representative Jamieson Greer said on Wednesday there would be no relief from the "
                        "25% tariff on Canadian steel while talks with Ottawa continue.", 2)

PAIRS: list[Pair] = [
    # the same story
    _same(MAGNET_A, MAGNET_B), _same(STEEL_A, STEEL_B), _same(LYNAS_A, LYNAS_C), _same(ANTIMONY_A, ANTIMONY_C),
    _same(GALLIUM_A, GALLIUM_B), _same(TRUCE_A, TRUCE_B), _same(CANOLA_A, CANOLA_B), _same(LISTING_A, LISTING_B),
    _same(PROBE_A, PROBE_B), _same(EXPORTS_A, EXPORTS_B), _same(STOCKPILE_A, STOCKPILE_C),
    _same(MAGNET_A, MAGNET_X), _same(MAGNET_B, MAGNET_Y), _same(STEEL_A, STEEL_X), _same(STEEL_B, STEEL_Y),
    _same(LYNAS_C, LYNAS_X), _same(ANTIMONY_A, ANTIMONY_X), _same(GALLIUM_B, GALLIUM_X), _same(TRUCE_A, TRUCE_X),
    _same(CANOLA_B, CANOLA_X), _same(LISTING_A, LISTING_X), _same(PROBE_A, PROBE_X), _same(PLACING_A, PLACING_X),
    _same(EXPORTS_A, EXPORTS_X), _same(MYANMAR_A, MYANMAR_X),
    _same(MAGNET_X, MAGNET_Y), _same(STEEL_X, STEEL_Y), _same(ANTIMONY_X, ANTIMONY_Y), _same(GALLIUM_X, GALLIUM_Y),
    _same(TRUCE_X, TRUCE_Y), _same(CANOLA_X, CANOLA_Y), _same(LISTING_X, LISTING_Y), _same(PLACING_X, PLACING_Y),
    _same(MYANMAR_X, MYANMAR_Y),
    # near misses
    _apart(OTHER_SUBJECT, STEEL_A, AVOCADO_C), _apart(OTHER_SUBJECT, STEEL_X, AVOCADO_Z),
    _apart(OTHER_SUBJECT, STEEL_B, AVOCADO_Z), _apart(OTHER_SUBJECT, GALLIUM_A, GRAPHITE_C),
    _apart(OTHER_SUBJECT, SOY_A, EVS_C), _apart(OTHER_SUBJECT, ANTIMONY_A, GALLIUM_SEIZED_C),
    _apart(OTHER_SUBJECT, ANTIMONY_X, RE_SEIZED_Z), _apart(OTHER_SUBJECT, LYNAS_OUTPUT_A, MP_OUTPUT_C),
    _apart(OTHER_SUBJECT, JAPAN_DEAL_A, KOREA_DEAL_C), _apart(OTHER_SUBJECT, PROBE_A, BUSES_C),
    _apart(OTHER_SUBJECT, INDIA_STEEL_A, VIETNAM_STEEL_C), _apart(OTHER_SUBJECT, GALLIUM_X, GERMANIUM_Z),
    _apart(LATER, MAGNET_A, MAGNET_LATER_C), _apart(LATER, MAGNET_X, MAGNET_LATER_Z),
    _apart(LATER, MAGNET_A, MAGNET_LATER_Z), _apart(LATER, STEEL_A, STEEL_LATER_C),
    _apart(LATER, STEEL_X, STEEL_LATER_Z), _apart(LATER, ANTIMONY_A, ANTIMONY_LATER_C),
    _apart(LATER, LISTING_A, LISTING_LATER_C), _apart(LATER, EXPORTS_X, EXPORTS_LATER_Z),
    _apart(LATER, GALLIUM_PRICE_A, GALLIUM_PRICE_LATER_C),
    _apart(SAME_DAY, EV_TARIFF_A, SOLAR_TARIFF_C), _apart(SAME_DAY, EV_TARIFF_A, CHIPS_TARIFF_B),
    _apart(SAME_DAY, CHIPS_TARIFF_B, MAGNET_TARIFF_C), _apart(SAME_DAY, COAL_A, CRUDE_C),
    _apart(SAME_DAY, COAL_Z, CRUDE_Y), _apart(SAME_DAY, EV_TARIFF_A, SOLAR_TARIFF_Z),
    _apart(SAME_DAY, COAL_A, CRUDE_Y), _apart(SAME_DAY, ORANGE_A, APPLIANCES_C),
    _apart(ONE_OFFICIAL, BESSENT_GENEVA_A, BESSENT_YEN_C), _apart(ONE_OFFICIAL, BESSENT_GENEVA_A, BESSENT_YEN_Z),
    _apart(ONE_OFFICIAL, HE_LICENCE_X, HE_BUSES_Z), _apart(ONE_OFFICIAL, HE_LICENCE_A, HE_BUSES_C),
    _apart(ONE_OFFICIAL, HE_LICENCE_A, HE_BUSES_Z), _apart(ONE_OFFICIAL, TRUMP_STEEL_A, TRUMP_VISIT_C),
    _apart(ONE_OFFICIAL, LACAZE_MALAYSIA_A, LACAZE_TEXAS_C), _apart(ONE_OFFICIAL, GREER_SHIPS_A, GREER_STEEL_C),
]
