"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.json_schema import JsonDict

from xnai.api.openapi import NEW_PASSWORD
from xnai.domain.access import COLLECTION_NAME
from xnai.domain.limits import (
    MAX_COLLECTION_DESCRIPTION_CHARS,
    MAX_CONVERSATION_CHARS,
    MAX_LOGIN_NAME_CHARS,
    MAX_MESSAGE_PARTS,
    MAX_MESSAGES,
    MAX_PASSWORD_CHARS,
    MAX_QUESTION_CHARS,
)

RoleName = Literal["viewer", "editor", "admin", "system"]


class Strict(BaseModel):
    """Request bodies refuse unknown fields (no mass assignment) and take each value as its
    JSON type only: ``0`` is not ``false``, ``"5"`` is not ``5``."""

    model_config = ConfigDict(extra="forbid", strict=True)


def new_password(default: Any = None, **constraints: Any) -> Any:
    """A field holding a new password. Never fewer than 8 characters; the document served
    at /openapi.json shows the configured minimum (``enterprise.security.password_min_length``,
    12 by default), which the server enforces with the other password rules (422)."""
    return Field(
        default,
        min_length=8,
        max_length=MAX_PASSWORD_CHARS,
        json_schema_extra={NEW_PASSWORD: True},
        **constraints,
    )


class QueryRequest(Strict):
    """POST /v1/query."""

    query: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    top_k: int | None = Field(default=None, ge=1, le=100)
    max_tokens: int | None = Field(default=None, ge=1, le=8192)
    mode: Literal["dense", "lexical", "hybrid"] | None = None
    stream: bool = False
    generate: bool = Field(default=True, description="false: retrieval only, no model call")


class Source(BaseModel):
    """One numbered citation."""

    number: int
    doc_id: str
    chunk_id: str
    title: str
    source: str
    span: list[int]
    score: float
    text: str


class QueryMetadata(BaseModel):
    """Timings and provenance of an answer."""

    processing_time: float
    retrieval_ms: float
    generation_ms: float
    model: str
    grounded: bool


class QueryResponse(BaseModel):
    """An answer with its sources."""

    answer_id: str | None = Field(
        default=None, description="GET /v1/answers/{answer_id}/bundle gives its signed bundle"
    )
    response: str
    sources: list[Source]
    metadata: QueryMetadata


NON_BLANK = r"\S"
# A user message needs text: a string, or a list holding a text part, with a character that
# is not white space. The schema says so; ChatMessageIn enforces it.
USER_TEXT: JsonDict = {
    "anyOf": [
        {"type": "string", "pattern": NON_BLANK},
        {
            "type": "array",
            "contains": {
                "type": "object",
                "properties": {
                    "type": {"const": "text"},
                    "text": {"type": "string", "pattern": NON_BLANK},
                },
                "required": ["type", "text"],
            },
        },
    ]
}
# Messages of the other roles may have no text; a user message needs it.
MESSAGE_RULE: JsonDict = {
    "anyOf": [
        {"properties": {"role": {"enum": ["system", "assistant", "tool", "developer"]}}},
        {"properties": {"role": {"const": "user"}, "content": USER_TEXT}, "required": ["content"]},
    ]
}


class ChatMessageIn(BaseModel):
    """One OpenAI-style message; content may be text or a list of parts, of which the text
    parts count. A user message needs text."""

    model_config = ConfigDict(strict=True, json_schema_extra=MESSAGE_RULE)

    role: Literal["system", "user", "assistant", "tool", "developer"]
    # The parts limit applies to the list form only: on the union it also capped a plain
    # string at MAX_MESSAGE_PARTS characters.
    content: str | Annotated[list[dict[str, Any]], Field(max_length=MAX_MESSAGE_PARTS)] | None = (
        None
    )

    def text(self) -> str:
        """The message text, with the text of its text parts joined."""
        if isinstance(self.content, list):
            return "".join(
                p["text"]
                for p in self.content
                if p.get("type") == "text" and isinstance(p.get("text"), str)
            )
        return self.content or ""

    @model_validator(mode="after")
    def _user_has_text(self) -> ChatMessageIn:
        if self.role == "user" and not self.text().strip():
            raise ValueError("a user message needs text")
        return self


class ChatCompletionRequest(BaseModel):
    """POST /v1/chat/completions (the OpenAI shape; unknown fields are ignored)."""

    model_config = ConfigDict(extra="ignore", strict=True)

    model: str | None = None
    messages: list[ChatMessageIn] = Field(
        min_length=1,
        max_length=MAX_MESSAGES,
        description="the conversation; it needs a user message with text",
        json_schema_extra={
            "contains": {"properties": {"role": {"const": "user"}}, "required": ["role"]}
        },
    )
    max_tokens: int | None = Field(default=None, ge=1, le=8192)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=8192)
    stream: bool = False
    temperature: float | None = Field(default=None, ge=0, le=2)

    @field_validator("messages")
    @classmethod
    def _has_user(cls, messages: list[ChatMessageIn]) -> list[ChatMessageIn]:
        if not any(m.role == "user" for m in messages):
            raise ValueError("the conversation needs a user message with text")
        return messages

    @model_validator(mode="after")
    def _bounded(self) -> ChatCompletionRequest:
        total = sum(len(m.text()) for m in self.messages)
        if total > MAX_CONVERSATION_CHARS:
            raise ValueError(
                f"the messages hold {total} characters; at most {MAX_CONVERSATION_CHARS}"
            )
        return self


# /v1/auth/*


class LoginRequest(Strict):
    username: str = Field(min_length=1, max_length=MAX_LOGIN_NAME_CHARS)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_CHARS)
    totp_code: str | None = Field(default=None, max_length=16)


class PasswordChange(Strict):
    current_password: str = Field(min_length=1, max_length=MAX_PASSWORD_CHARS)
    new_password: str = new_password(...)


class MfaEnrol(Strict):
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_CHARS)


class MfaCode(Strict):
    code: str = Field(min_length=1, max_length=16)


class NewApiKey(Strict):
    name: str = Field(min_length=1, max_length=64)
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


# /v1/users


class NewUser(Strict):
    username: str = Field(min_length=1, max_length=64)
    role: RoleName = "viewer"
    password: str | None = new_password(description="omitted: a random password is returned")


class RoleChange(Strict):
    role: RoleName


class PasswordReset(Strict):
    password: str | None = new_password(description="omitted: a random password is returned")


# /v1/collections


class NewCollection(Strict):
    name: str = Field(
        min_length=1,
        max_length=128,
        pattern=COLLECTION_NAME.pattern,
        description="letters, digits, '_', '.' and '-', starting with a letter or digit",
    )
    description: str = Field(default="", max_length=MAX_COLLECTION_DESCRIPTION_CHARS)
    readable_roles: list[RoleName] = []
    readable_users: list[str] = Field(default=[], description="user ids or usernames")
    writable_roles: list[RoleName] = []
    writable_users: list[str] = []


class AccessChange(Strict):
    roles: list[RoleName] = []
    users: list[str] = Field(default=[], description="user ids or usernames")
    write: bool = Field(
        default=False, description="grant: also write; revoke: take away writing only"
    )
