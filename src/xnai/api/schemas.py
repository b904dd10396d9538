"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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
    """Request bodies refuse unknown fields (no mass assignment)."""

    model_config = ConfigDict(extra="forbid")


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


class ChatMessageIn(BaseModel):
    """One OpenAI-style message; content may be text or a list of text parts."""

    role: Literal["system", "user", "assistant", "tool", "developer"]
    # The parts limit applies to the list form only: on the union it also capped a plain
    # string at MAX_MESSAGE_PARTS characters.
    content: str | Annotated[list[dict[str, Any]], Field(max_length=MAX_MESSAGE_PARTS)] | None = (
        None
    )

    def text(self) -> str:
        """The message text, with list parts joined."""
        if isinstance(self.content, list):
            return "".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class ChatCompletionRequest(BaseModel):
    """POST /v1/chat/completions (the OpenAI shape; unknown fields are ignored)."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    messages: list[ChatMessageIn] = Field(min_length=1, max_length=MAX_MESSAGES)
    max_tokens: int | None = Field(default=None, ge=1, le=8192)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=8192)
    stream: bool = False
    temperature: float | None = Field(default=None, ge=0, le=2)

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
    new_password: str = Field(min_length=1, max_length=MAX_PASSWORD_CHARS)


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
    password: str | None = Field(
        default=None,
        max_length=MAX_PASSWORD_CHARS,
        description="omitted: a random password is returned",
    )


class RoleChange(Strict):
    role: RoleName


class PasswordReset(Strict):
    password: str | None = Field(default=None, max_length=MAX_PASSWORD_CHARS)


# /v1/collections


class NewCollection(Strict):
    name: str = Field(min_length=1, max_length=128)
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
