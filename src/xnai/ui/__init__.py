"""The chat UI: Chainlit mounted into the HTTP app at ``/chat`` (see ``xnai.ui.mount``)."""
