"""What the lxml reader (`fastpath`) needs beyond element text: the DOCTYPE feedparser removes, the
base URI it resolves links against where a document sets xml:base, and Atom XHTML constructs as
the markup string it makes of them."""

from __future__ import annotations

import re
from html import escape

from lxml import etree

__all__ = ["NotCommon", "doctype_version", "has_other_base_attribute", "rebase", "xhtml_markup"]

_XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"
_XHTML = "{http://www.w3.org/1999/xhtml}"


class NotCommon(Exception):
    """The document needs feedparser."""


# feedparser removes a DOCTYPE that starts a line before the root element, naming the feed
# "rss091n" when it is Netscape's, and parses the rest without it: the predefined entities and
# character references read as before, and any other entity makes the document malformed to it.
_ROOT_RE = re.compile(r"<\w", re.ASCII)
_DOCTYPE_RE = re.compile(r"^\s*<!DOCTYPE([^>]*?)>", re.MULTILINE)
_DTD_ENTITY_RE = re.compile(r"&(?!(?:amp|lt|gt|quot|apos);|#)")


def doctype_version(text: str) -> str:
    """The version a document's DOCTYPE makes it to feedparser ("rss091n", or "" for none); raises
    NotCommon where feedparser reads the document otherwise than as if it had no DOCTYPE."""
    root = _ROOT_RE.search(text)
    head = text[: root.start() + 1] if root else text
    if "<!DOCTYPE" not in head:
        return ""
    doctypes = _DOCTYPE_RE.findall(head)
    if len(doctypes) != 1 or head.count("<!DOCTYPE") != 1 or "[" in doctypes[0]:
        raise NotCommon("a DOCTYPE feedparser keeps, or one with an internal subset")
    if _DTD_ENTITY_RE.search(text):
        raise NotCommon("an entity only a DTD defines")
    return "rss091n" if "netscape" in doctypes[0].lower() else ""


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


# Inside XHTML, feedparser ends a <body> as it ends an entry's content, and escapes the text of a
# script or style, which its sanitiser then lets out in part; elements of other namespaces (SVG,
# MathML, foreign markup) it writes with rules of its own.
_XHTML_DECLINED = frozenset({_XHTML + "body", _XHTML + "script", _XHTML + "style"})
# Elements the HTML serialiser writes as a start tag alone, dropping what they hold.
_VOID = frozenset({"area", "base", "basefont", "br", "col", "frame", "hr", "img", "input", "isindex", "link",
                   "meta", "param"})


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
        node.tag = tag = tag[len(_XHTML):]
        if tag in _VOID and (node.text or len(node)):
            raise NotCommon(f"content inside <{tag}>")
    parts = [escape(div.text or "", quote=False)]
    parts += [etree.tostring(child, method="html", encoding="unicode", with_tail=False)
              + escape(child.tail or "", quote=False) for child in div]
    return "".join(parts).strip()
