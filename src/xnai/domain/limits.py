"""Caps on what a caller may send: every entry point (HTTP, chat, command line) refuses the
same sizes before anything reaches storage, the audit trail or the model."""

from __future__ import annotations

MAX_LOGIN_NAME_CHARS = 256  # as typed at sign-in; accounts have at most 64
MAX_PASSWORD_CHARS = 4096
MAX_QUESTION_CHARS = 8000
MAX_MESSAGES = 64  # turns of one conversation, the question included
MAX_CONVERSATION_CHARS = 64_000  # all turns of one conversation together
MAX_MESSAGE_PARTS = 1000  # text parts of one message in the OpenAI shape
MAX_COLLECTION_DESCRIPTION_CHARS = 2000
MAX_TITLE_CHARS = 300  # longer document titles are shortened
