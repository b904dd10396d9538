"""The chat's Chainlit handlers: sign-in, questions, commands, uploads and speech.

Import this module only after ``xnai.ui.mount.prepare`` (Chainlit reads its home folder
when it is first imported); ``install`` registers the handlers for one container and
returns the Chainlit application to mount.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import chainlit as cl
from chainlit.auth import decode_jwt, get_token_from_cookies
from chainlit.config import config as chainlit_config
from chainlit.server import app as chainlit_app
from chainlit.server import sio
from fastapi import HTTPException, Request, Response

from xnai.bootstrap import Container
from xnai.domain.errors import (
    AccountLockedError,
    AuthenticationError,
    MfaRequiredError,
    NotFoundError,
    PermissionDeniedError,
    XnaiError,
)
from xnai.domain.models import Citation
from xnai.domain.rbac import Permission, Principal
from xnai.services.voice import speakable, wav_bytes
from xnai.ui import commands
from xnai.ui.chat import Conversation, Reply, friendly_error
from xnai.ui.files import read_upload, upload_name
from xnai.ui.login import (
    CLIENT_ADDRESS,
    PENDING_SECONDS,
    ChatLogin,
    ClientAddress,
    LoginRefused,
    Logins,
)
from xnai.ui.render import citation_markdown, escape_text, reading_line, safe_markdown
from xnai.ui.streaming import drain
from xnai.ui.tickets import TicketSealer
from xnai.ui.voice import AUDIO_SAMPLE_RATE, UNAVAILABLE, Utterances, speech_at

log = logging.getLogger("xnai.ui")

CONVERSATION = "xnai_conversation"
UTTERANCES = "xnai_utterances"
VOICE_LOCK = "xnai_voice_lock"
LISTENING = "xnai_listening"
CODE_ATTEMPTS = 3
BUNDLE_FILE = "answer-bundle.json"


class ChatHandlers:
    """The chat of one container; each method is a Chainlit callback."""

    def __init__(self, container: Container) -> None:
        self.c = container
        self.logins = Logins(container, TicketSealer(container.keyring))

    # -- sign-in -------------------------------------------------------------------------------

    async def password(self, username: str, password: str) -> cl.User | None:
        """Chainlit's password callback: our user store, lockout and MFA included."""
        try:
            login = await asyncio.to_thread(
                self.logins.password, username, password, source_ip=CLIENT_ADDRESS.get()
            )
        except LoginRefused as exc:
            raise HTTPException(status_code=429, detail=exc.reason) from exc
        return _user(login) if login is not None else None

    async def logout(self, request: Request, response: Response) -> dict[str, bool]:
        """End the session behind the chat's login cookie."""
        token = get_token_from_cookies(request.cookies)
        if token:
            try:
                user = decode_jwt(token)
            except Exception:  # an expired or foreign cookie: nothing to end
                user = None
            if user is not None:
                await asyncio.to_thread(self.logins.logout, dict(user.metadata))
        return {"success": True}

    async def chat_start(self) -> None:
        """A new conversation: finish the sign-in (one-time code), then greet."""
        metadata = _metadata()
        if self.logins.needs_code(metadata) and not await self._ask_code(metadata):
            return
        try:
            principal = await asyncio.to_thread(self.logins.principal, metadata)
        except XnaiError as exc:
            await _say(escape_text(friendly_error(exc)))
            return
        conversation = Conversation(self.c, lambda: self.logins.principal(metadata))
        cl.user_session.set(CONVERSATION, conversation)
        cl.user_session.set(VOICE_LOCK, asyncio.Lock())
        await _say(_welcome(principal))

    async def _ask_code(self, metadata: dict[str, Any]) -> bool:
        prompt = (
            "Your account uses a one-time code: enter the 6-digit code from your authenticator app."
        )
        for _ in range(CODE_ATTEMPTS):
            answer = await cl.AskUserMessage(content=prompt, timeout=PENDING_SECONDS).send()
            if not answer:
                await _say("No code was given in time: sign out and sign in again.")
                return False
            try:
                await asyncio.to_thread(self.logins.code, metadata, str(answer.get("output", "")))
                return True
            except AccountLockedError:
                await _say("Too many failed sign-ins: this account is locked for a while.")
                return False
            except MfaRequiredError:
                prompt = "That code was not accepted. Enter the current 6-digit code."
            except AuthenticationError as exc:
                await _say(escape_text(str(exc)))
                return False
        await _say("The code was not accepted: sign out and sign in again.")
        return False

    # -- messages ------------------------------------------------------------------------------

    async def message(self, message: cl.Message) -> None:
        """A question, a command, or files dropped into the chat."""
        conversation = _conversation()
        if conversation is None:
            await _say("This chat is not signed in: sign out and sign in again.")
            return
        files = [e for e in message.elements if getattr(e, "path", None)]
        if files:
            await self.upload(conversation, files)
        text = (message.content or "").strip()
        if not text:
            return
        command = commands.parse(text)
        if command is None:
            await self.answer(conversation, text)
        else:
            await self.command(conversation, command)

    async def answer(
        self, conversation: Conversation, question: str, *, retrieval: bool | None = None
    ) -> None:
        """Stream the answer to ``question``, then its numbered sources (and speech)."""
        try:
            reply = await asyncio.to_thread(conversation.ask, question, retrieval=retrieval)
        except XnaiError as exc:
            await _say(escape_text(friendly_error(exc)))
            return
        msg = cl.Message(content="")
        text = ""
        # Where the answer will come from, shown as soon as retrieval is done: the model
        # still has to read the prompt, which takes seconds on a CPU.
        reading = reading_line(reply.citations)
        if reading:
            await msg.stream_token(reading, is_sequence=True)
        try:
            async for piece in drain(reply):
                text += piece
                # The whole text each time: a link or image must never render, not even
                # while its closing parenthesis is still to come.
                await msg.stream_token(_join(safe_markdown(text), reading), is_sequence=True)
        except Exception as exc:
            conversation.stats.failed += 1
            msg.content = _join(safe_markdown(text), escape_text(friendly_error(exc)))
            await msg.send()
            return
        final = reply.answer.text if reply.answer is not None else text
        msg.content = _join(safe_markdown(final), _sources_line(reply.cited))
        elements: list[Any] = _source_elements(reply.cited)
        elements += await _bundle_element(conversation, reply)
        msg.elements = elements
        await msg.send()
        await self.speak(conversation, final, msg)

    async def command(self, conversation: Conversation, command: commands.Command) -> None:
        """Run a slash command."""
        handler = self._commands().get(command.name)
        if handler is None:
            name = escape_text("/" + command.name)
            await _say(f"Unknown command {name}: type `/help` for the list.")
            return
        await handler(conversation, command.arg)

    def _commands(
        self,
    ) -> dict[str, Callable[[Conversation, str], Coroutine[Any, Any, None]]]:
        return {
            "help": self._help,
            "query": self._query,
            "rag": self._rag,
            "stats": self._stats,
            "reset": self._reset,
            "collection": self._collection,
            "voice": self._voice,
            "curate": self._curate,
        }

    async def _help(self, conversation: Conversation, arg: str) -> None:
        await _say(commands.help_markdown())

    async def _query(self, conversation: Conversation, arg: str) -> None:
        if not arg:
            await _say("Usage: `/query QUESTION`")
            return
        await self.answer(conversation, arg, retrieval=True)

    async def _rag(self, conversation: Conversation, arg: str) -> None:
        on = await _switch(arg, "Retrieval is", conversation.rag, "/rag")
        if on is None:
            return
        conversation.rag = on
        if on:
            await _say("Retrieval is **on**: answers come from your library, with sources.")
        else:
            await _say(
                "Retrieval is **off**: answers come from the model alone, without sources. "
                "`/query QUESTION` still answers from the library; `/rag on` switches back."
            )

    async def _stats(self, conversation: Conversation, arg: str) -> None:
        tokens = await asyncio.to_thread(conversation.history_tokens)
        turns = len(conversation.history) // 2
        await _say(
            conversation.stats.markdown(
                rag=conversation.rag, history_turns=turns, history_tokens=tokens
            )
        )

    async def _reset(self, conversation: Conversation, arg: str) -> None:
        conversation.reset()
        await _say("The conversation so far is forgotten: the next answer starts afresh.")

    async def _collection(self, conversation: Conversation, arg: str) -> None:
        if not arg:
            name = escape_text(conversation.collection)
            await _say(f"Files you drop into the chat go into the collection **{name}**.")
            return
        try:
            principal = await asyncio.to_thread(conversation.principal)
            await asyncio.to_thread(self.c.access.check_write, principal, arg)
        except XnaiError as exc:
            await _say(escape_text(friendly_error(exc)))
            return
        conversation.collection = arg
        await _say(f"Files you drop into the chat now go into **{escape_text(arg)}**.")

    async def _voice(self, conversation: Conversation, arg: str) -> None:
        on = await _switch(arg, "Spoken answers are", conversation.voice, "/voice")
        if on is None:
            return
        if on and await _loaded(_speech_out(self.c)) is None:
            await _say(escape_text(UNAVAILABLE))
            return
        conversation.voice = on
        await _say("Answers are now read aloud." if on else "Answers are no longer read aloud.")

    async def _curate(self, conversation: Conversation, arg: str) -> None:
        await _say(commands.CURATE_UNAVAILABLE)

    # -- uploads -------------------------------------------------------------------------------

    async def upload(self, conversation: Conversation, files: list[Any]) -> None:
        """Ingest dropped files (editors and admins), with progress and a result per file."""
        try:
            principal = await asyncio.to_thread(conversation.principal)
            refusal = await asyncio.to_thread(self._upload_refusal, conversation, principal)
        except XnaiError as exc:
            refusal = friendly_error(exc)
        if refusal is not None:
            _discard(files)
            conversation.upload_refused()
            await _say(escape_text(refusal))
            return
        progress = cl.Message(
            content=f"Adding {len(files)} file(s) to **{escape_text(conversation.collection)}** …"
        )
        await progress.send()
        lines: list[str] = []
        for done, element in enumerate(files, start=1):
            name = upload_name(str(element.name or "upload"))
            data = read_upload(Path(element.path), self.c.ingestion.max_file_bytes)
            _discard([element])
            try:
                report = await asyncio.to_thread(
                    conversation.upload, [(name, data)], source_ip=_session_address()
                )
            except XnaiError as exc:
                lines.append(f"- {escape_text(name)}: refused, {escape_text(friendly_error(exc))}")
            else:
                lines.append(f"- {escape_text(name)}: {escape_text(_outcome(report))}")
            progress.content = f"Adding files: {done} of {len(files)} done\n\n" + "\n".join(lines)
            await progress.update()
        progress.content = "**Files**\n\n" + "\n".join(lines)
        await progress.update()

    def _upload_refusal(self, conversation: Conversation, principal: Principal) -> str | None:
        if not principal.can(Permission.WRITE_DOCUMENTS):
            return (
                f"You lack the permission to add documents (your role is {principal.role.value}): "
                "ask an editor or an admin to add them."
            )
        try:
            self.c.access.check_write(principal, conversation.collection)
        except (PermissionDeniedError, NotFoundError) as exc:
            return f"You may not add documents to this collection: {exc}"
        return None

    # -- speech --------------------------------------------------------------------------------

    async def audio_start(self) -> bool:
        """The microphone was switched on: listen, if speech to text is available."""
        if _conversation() is None:
            return False
        if await _loaded(getattr(self.c, "speech_to_text", None)) is None:
            await _say(escape_text(UNAVAILABLE))
            return False
        cl.user_session.set(UTTERANCES, Utterances(AUDIO_SAMPLE_RATE))
        cl.user_session.set(LISTENING, True)
        return True

    async def audio_chunk(self, chunk: cl.InputAudioChunk) -> None:
        """A piece of the microphone stream: answer each utterance once its speaker pauses."""
        utterances = cl.user_session.get(UTTERANCES)
        if not isinstance(utterances, Utterances):
            return
        pcm = utterances.add(chunk.data)
        if pcm is not None:
            await self.spoken_question(pcm)

    async def audio_end(self) -> None:
        """The microphone was switched off: answer what was said last."""
        utterances = cl.user_session.get(UTTERANCES)
        cl.user_session.set(LISTENING, False)
        if isinstance(utterances, Utterances) and (pcm := utterances.flush()) is not None:
            await self.spoken_question(pcm)

    async def spoken_question(self, pcm: bytes) -> None:
        """Transcribe an utterance, show it as the user's message and answer it."""
        conversation, stt = _conversation(), getattr(self.c, "speech_to_text", None)
        lock = cl.user_session.get(VOICE_LOCK)
        if conversation is None or stt is None or not isinstance(lock, asyncio.Lock):
            return
        async with lock:  # one spoken question at a time, in the order they were said
            wav = wav_bytes(pcm, AUDIO_SAMPLE_RATE)
            try:
                transcript = await asyncio.to_thread(stt.transcribe, wav, mime="audio/wav")
            except Exception as exc:
                log.warning("speech to text failed: %s", exc)
                await _say("I could not understand the recording: please try again or type.")
                return
            text = transcript.text.strip()
            if not text:
                return
            user = cl.user_session.get("user")
            author = getattr(user, "identifier", None) or "You"
            await cl.Message(content=text, author=author, type="user_message").send()
            command = commands.parse(text)
            if command is not None:
                await self.command(conversation, command)
            else:
                await self.answer(conversation, text)

    async def speak(self, conversation: Conversation, text: str, msg: cl.Message) -> None:
        """Read an answer aloud: streamed to the browser's player while the microphone is
        on, else (``/voice on``) as an audio clip under the answer."""
        listening = bool(cl.user_session.get(LISTENING))
        tts = _speech_out(self.c)
        words = speakable(text)
        if not (listening or conversation.voice) or tts is None or not words:
            return
        try:
            if listening:
                track = str(uuid.uuid4())
                async for pcm in drain(speech_at(tts.synthesize(words), AUDIO_SAMPLE_RATE)):
                    chunk = cl.OutputAudioChunk(mimeType="pcm16", data=pcm, track=track)
                    await cl.context.emitter.send_audio_chunk(chunk)
                return
            pcm = b"".join(
                [p async for p in drain(speech_at(tts.synthesize(words), AUDIO_SAMPLE_RATE))]
            )
            clip = cl.Audio(
                name="spoken answer",
                content=wav_bytes(pcm, AUDIO_SAMPLE_RATE),
                mime="audio/wav",
                display="inline",
                auto_play=True,
            )
            await clip.send(for_id=msg.id)
        except Exception as exc:
            log.warning("text to speech failed: %s", exc)
            await _say("I could not read this answer aloud.")


def install(container: Container) -> Any:
    """Register the chat's handlers for ``container``; the Chainlit app to mount."""
    chat = ChatHandlers(container)
    # Not through cl.password_auth_callback: its wrapper would swallow the refusal of a
    # locked account, which the login form shows by its own message.
    chainlit_config.code.password_auth_callback = chat.password
    cl.on_logout(chat.logout)
    cl.on_chat_start(chat.chat_start)
    cl.on_message(chat.message)
    cl.on_audio_start(chat.audio_start)
    cl.on_audio_chunk(chat.audio_chunk)
    cl.on_audio_end(chat.audio_end)
    # Socket.IO connections only from the page's own origin (Chainlit accepts any).
    sio.eio.cors_allowed_origins = None
    return ClientAddress(chainlit_app)


def _user(login: ChatLogin) -> cl.User:
    return cl.User(identifier=login.username, display_name=login.username, metadata=login.metadata)


def _metadata() -> dict[str, Any]:
    user = cl.user_session.get("user")
    metadata = getattr(user, "metadata", None)
    return dict(metadata) if isinstance(metadata, dict) else {}


def _session_address() -> str | None:
    """The peer address of this chat's connection (as HTTP records it for its requests)."""
    environ = getattr(cl.context.session, "environ", None)
    scope = environ.get("asgi.scope") if isinstance(environ, dict) else None
    client = scope.get("client") if isinstance(scope, dict) else None
    return str(client[0]) if client else None


def _conversation() -> Conversation | None:
    found = cl.user_session.get(CONVERSATION)
    return found if isinstance(found, Conversation) else None


def _speech_out(container: Container) -> Any:
    return getattr(container, "text_to_speech", None)


async def _loaded(engine: Any) -> Any:
    """``engine`` with its model loaded (a lazy engine loads now, off the event loop), or
    None when there is none or it cannot load."""
    if engine is None:
        return None
    load = getattr(engine, "load", None) or getattr(getattr(engine, "engine", None), "load", None)
    if callable(load):
        try:
            await asyncio.to_thread(load)
        except Exception as exc:  # missing packages or model files
            log.warning("speech is unavailable: %s", exc)
            return None
    return engine


async def _say(markdown: str) -> None:
    await cl.Message(content=markdown).send()


async def _switch(arg: str, setting: str, current: bool, command: str) -> bool | None:
    """The on/off that ``arg`` asks for; None, after saying how ``setting`` stands and how to
    switch it, when ``arg`` is neither."""
    on = commands.switch(arg)
    if on is None:
        state = "on" if current else "off"
        await _say(f"{setting} {state}. Usage: `{command} on` or `{command} off`.")
    return on


def _join(*parts: str) -> str:
    return "\n\n".join(p for p in parts if p)


def _welcome(principal: Principal) -> str:
    return (
        f"Signed in as **{escape_text(principal.username)}** ({principal.role.value}). "
        "Ask a question about your library, or type `/help` for the commands."
    )


def _sources_line(citations: tuple[Citation, ...]) -> str:
    if not citations:
        return ""
    return "Sources: " + ", ".join(f"[{c.number}]" for c in citations)


def _source_elements(citations: tuple[Citation, ...]) -> list[cl.Text]:
    return [
        cl.Text(name=f"[{c.number}]", content=citation_markdown(c), display="side")
        for c in citations
    ]


async def _bundle_element(conversation: Conversation, reply: Reply) -> list[cl.File]:
    """The answer's signed bundle as a file to download (none when it has none)."""
    try:
        bundle = await asyncio.to_thread(conversation.bundle_json, reply.answer)
    except XnaiError as exc:
        log.warning("the answer bundle is not offered: %s", exc)
        return []
    if bundle is None:
        return []
    content = bundle.encode("utf-8")
    return [cl.File(name=BUNDLE_FILE, content=content, mime="application/json", display="inline")]


def _outcome(report: Any) -> str:
    if report.failed:
        return "failed: " + "; ".join(why for _, why in report.failed)
    if report.added:
        return f"added ({report.chunks_added} chunks)"
    if report.replaced:
        return f"replaced ({report.chunks_added} chunks)"
    return "unchanged (already in the library)"


def _discard(files: list[Any]) -> None:
    """Delete the chat's temporary copies of uploaded files (the library keeps its own,
    encrypted)."""
    session = cl.context.session
    for element in files:
        path = getattr(element, "path", None)
        if path:
            Path(path).unlink(missing_ok=True)
        key = getattr(element, "chainlit_key", None) or getattr(element, "id", None)
        if isinstance(key, str):
            session.files.pop(key, None)


__all__ = ["ChatHandlers", "install"]
