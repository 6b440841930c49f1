"""The search request and response as pydantic models, one ``parse_query`` for the CLI and
the server (issue 25). FastAPI's OpenAPI schema for ``POST /search`` comes from these."""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tgir import TgirError
from tgir.models.joint_embedding import METHODS
from tgir.search.searcher import MAX_K, MAX_TEXT_CHARS, Query


def _words(value) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    if isinstance(value, str):
        return [w for w in value.replace(",", " ").split() if w]
    raise ValueError("must be a string of words or a list of words")


class SearchRequest(BaseModel):
    """One query: a reference (``item_id`` here, or an uploaded ``image`` in a multipart
    body) and / or a text, desired / undesired words, an attribute set."""

    model_config = ConfigDict(extra="ignore")

    text: str = Field("", max_length=MAX_TEXT_CHARS,
                      description="modification text, or the whole query for a text model")
    item_id: str | None = Field(None, description="reference: a catalog item id")
    k: int = Field(10, ge=1, le=MAX_K, description="number of results")
    plus: list[str] = Field(default_factory=list,
                            description="desired words (joint embedding; a composed model "
                                        "adds them to the text), space separated or a list")
    minus: list[str] = Field(default_factory=list,
                             description="undesired words (joint embedding only)")
    keep_reference: bool = Field(False, description="let the reference item appear")
    method: Literal[METHODS] | None = Field(  # the joint embedding's METHODS
        None, description="refinement method of the joint embedding: query arithmetic + soft "
                          "attribute filtering (default), query arithmetic, soft filtering, "
                          "or hard filtering on the catalog text")
    attributes: dict[str, str] | None = Field(
        None, description="attribute query (attribute models): {attribute: value}, or the "
                          "string 'gender=woman; skin=dark'")

    @field_validator("text", mode="before")
    @classmethod
    def _text(cls, v):
        if v is None:
            return ""
        if not isinstance(v, str):
            raise ValueError("must be a string")
        return v

    @field_validator("item_id", "method", mode="before")
    @classmethod
    def _empty_is_none(cls, v):
        if v == "":
            return None
        if v is not None and not isinstance(v, str):
            raise ValueError("must be a string")
        return v

    @field_validator("plus", "minus", mode="before")
    @classmethod
    def _word_list(cls, v):
        return _words(v)

    @field_validator("keep_reference", mode="before")
    @classmethod
    def _flag(cls, v):
        if isinstance(v, bool) or v is None:
            return bool(v)
        return str(v).strip().lower() in ("1", "true", "yes", "on")

    @field_validator("k", mode="before")
    @classmethod
    def _k(cls, v):
        if v is None or v == "":
            return 10
        if isinstance(v, bool):
            raise ValueError("must be an integer")
        try:
            return int(v)
        except (TypeError, ValueError):
            raise ValueError("must be an integer") from None

    @field_validator("attributes", mode="before")
    @classmethod
    def _attrs(cls, v):
        if v is None or v == "" or v == {}:
            return None
        if isinstance(v, str):
            text = v.strip()
            if text.startswith("{"):
                try:
                    v = json.loads(text)
                except json.JSONDecodeError as e:
                    raise ValueError(f"is not a JSON object: {e.msg}") from None
            else:
                pairs = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
                if not all("=" in p for p in pairs):
                    raise ValueError("must be attribute=value pairs, e.g. gender=woman; "
                                     "skin=dark")
                v = dict(tuple(x.strip() for x in p.split("=", 1)) for p in pairs)
        if not isinstance(v, dict) or not all(isinstance(a, str) and isinstance(b, str)
                                              for a, b in v.items()):
            raise ValueError("must map attribute names to string values")
        return v


class Hit(BaseModel):
    rank: int
    id: str
    score: float
    file: str
    text: str
    meta: dict
    image: str = Field(description="URL of the item's image")


class QueryEcho(BaseModel):
    text: str
    item_id: str | None
    plus: list[str]
    minus: list[str]
    uploaded: bool
    k: int
    method: str | None
    attributes: dict[str, str] | None


class SearchResponse(BaseModel):
    query: QueryEcho
    results: list[Hit]
    notes: list[str] = Field(default_factory=list,
                             description="what the search ignored, e.g. unknown words")


def validation_message(e: ValidationError) -> str:
    """One readable line per problem, naming the field ('k: must be ...')."""
    parts = []
    for err in e.errors():
        field = ".".join(str(x) for x in err.get("loc", ())) or "request"
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{field}: {msg}")
    return "; ".join(parts)


def parse_request(data: dict) -> SearchRequest:
    """``data`` (a JSON object or form fields) as a SearchRequest; a problem is a TgirError
    naming the field."""
    if not isinstance(data, dict):
        raise TgirError("the request must be an object of query fields")
    try:
        return SearchRequest.model_validate(data)
    except ValidationError as e:
        raise TgirError(validation_message(e)) from e


def parse_query(data: dict | SearchRequest, image: str | bytes | None = None,
                image_name: str | None = None) -> tuple[Query, int]:
    """The Searcher's Query and k of a request (the CLI and the server both come here)."""
    req = data if isinstance(data, SearchRequest) else parse_request(data)
    q = Query(text=req.text, image=image, item_id=req.item_id, plus=list(req.plus),
              minus=list(req.minus), keep_reference=req.keep_reference,
              attributes=req.attributes, method=req.method, image_name=image_name)
    return q, req.k
