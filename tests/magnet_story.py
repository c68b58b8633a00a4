"""A story the LLM tests poll: an English outlet's report of China's magnet export licences, and a
model's brief of it that holds up against that report in both languages."""

from __future__ import annotations

from feedgen import Entry

MAGNETS_EN = Entry("China approves rare earth magnet export licences for 12 European firms",
                   "China's commerce ministry approved rare earth magnet export licences for 12 European companies "
                   "on Friday. NdPr oxide prices rose 4.5% to 615,000 yuan per tonne after the news.",
                   guid="a-1", link="https://a.example/magnets")

MAGNETS_REPLY = {
    "relevant": True,
    "title": {"en": "China clears magnet export licences for 12 European firms",
              "zh": "中国批准12家欧洲企业稀土磁体出口许可"},
    "summary": {"en": "China approved rare-earth magnet export licences for 12 European companies; NdPr oxide "
                      "rose 4.5% to 615,000 yuan per tonne.",
                "zh": "商务部批准12家欧洲企业稀土磁体出口许可，氧化镨钕价格上涨4.5%，报每吨61.5万元。"},
    "figures": [{"text": "4.5%", "label": {"en": "NdPr oxide price rise", "zh": "氧化镨钕涨幅"}}],
}
