"""What the lxml reader (`fastpath`) needs beyond element text: the base URI feedparser resolves
links against where a document sets xml:base, and Atom XHTML constructs as the markup string
feedparser makes of them."""

from __future__ import annotations

import re

from lxml import etree

__all__ = ["NotCommon", "has_other_base_attribute", "rebase", "xhtml_markup"]

_XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"
_XHTML = "{http://www.w3.org/1999/xhtml}"


class NotCommon(Exception):
    """The document needs feedparser."""


# feedparser takes an attribute named "base" in any case, without a prefix or with one it does not
# know, as xml:base; only the real xml:base is modelled here.
_BASE_ATTRIBUTE_RE = re.compile(r"\b(?:[\w.-]+:)?base\s*=", re.IGNORECASE)


def has_other_base_attribute(text: str) -> bool:
    return any(not match.group().startswith("xml:base") for match in _BASE_ATTRIBUTE_RE.finditer(text))


def rebase(base: str, element) -> str:
    """The base URI inside `element` when its parent's is `base`, as feedparser tracks it: joined
    with the element's xml:base (or with itself), kept when the result's scheme is not one it allows."""
    from feedparser.urls import make_safe_absolute_uri  # only documents with xml:base come here

    return make_safe_absolute_uri(base, element.get(_XML_BASE) or base) or base


# Inside XHTML, feedparser ends a <body> as it ends an entry's content; elements of other
# namespaces (SVG, MathML, foreign markup) it writes with rules of its own.
_XHTML_DECLINED = frozenset({_XHTML + "body"})


def xhtml_markup(element) -> str:
    """The markup of an Atom type="xhtml" construct: the children of its one <div>, as HTML.

    feedparser removes the div and writes the rest out; the HTML serialiser gives the same
    elements and text (void elements as <br>, text escaped), which is all the HTML-to-text step reads."""
    if len(element) != 1 or (element.text or "").strip():
        raise NotCommon("XHTML content outside one div")
    div = element[0]
    if div.tag != _XHTML + "div" or (div.tail or "").strip():
        raise NotCommon("XHTML content outside one div")
    for node in div.iterdescendants():
        tag = node.tag
        if not isinstance(tag, str) or not tag.startswith(_XHTML) or tag in _XHTML_DECLINED:
            raise NotCommon("XHTML holding foreign markup")
        node.tag = tag[len(_XHTML):]
    parts = [_escape(div.text)] if div.text else []
    parts += [etree.tostring(child, method="html", encoding="unicode", with_tail=False) + _escape(child.tail)
              for child in div]
    return "".join(parts).strip()


def _escape(text: str | None) -> str:
    return (text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
