"""The terminal chat loop of `wenlm chat`. The conversation is kept and rendered with the chat template
each turn; the reply is streamed token by token. Type /reset to start over, /exit (or end the input) to quit."""

from __future__ import annotations

from typing import TextIO

from transformers import TextStreamer

RESET, EXIT = "/reset", "/exit"


class WriterStreamer(TextStreamer):
    """A TextStreamer that writes each finished piece of the reply to `output` (not stdout) and flushes it."""

    def __init__(self, tokenizer, output: TextIO):
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self.output = output

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        self.output.write(text)
        self.output.flush()


def read_line(input_stream: TextIO) -> str:
    try:
        return input_stream.readline()
    except UnicodeDecodeError as error:
        raise ValueError(
            f"wenlm chat reads UTF-8 text, but its input holds the byte 0x{error.object[error.start]:02x}, "
            f"which is not UTF-8 ({error.encoding} {error.reason}). Convert the input first (e.g. "
            "`iconv -f GBK -t UTF-8`) or set the terminal to UTF-8."
        ) from None


def chat_loop(
    model,
    tokenizer,
    input_stream: TextIO,
    output_stream: TextIO,
    system: str | None = None,
    generate_kwargs: dict | None = None,
    max_context: int | None = None,
) -> list[dict]:
    """Run the conversation until /exit or the end of `input_stream`; return the final history."""
    if not tokenizer.chat_template:
        raise ValueError(
            "The tokenizer has no chat_template; `wenlm chat` needs one (wenlm tokenizers have it)."
        )
    generate_kwargs = dict(generate_kwargs or {})
    max_context = max_context or model.config.max_position_embeddings
    system_turn = [{"role": "system", "content": system}] if system else []
    history = list(system_turn)
    streamer = WriterStreamer(tokenizer, output_stream)
    output_stream.write(f"Chatting with the model; {RESET} clears the conversation, {EXIT} quits.\n")
    while True:
        output_stream.write("you> ")
        output_stream.flush()
        line = read_line(input_stream)
        if not line:  # end of input
            output_stream.write("\n")
            break
        text = line.strip()
        if not text:
            continue
        if text == EXIT:
            break
        if text == RESET:
            history = list(system_turn)
            output_stream.write("(conversation cleared)\n")
            continue
        history.append({"role": "user", "content": text})
        # What the user typed stays text: `<|end|>` or `<|assistant|>` in a line cannot forge a turn.
        encoded = tokenizer.apply_chat_template(
            history,
            add_generation_prompt=True,
            return_dict=True,
            return_tensors="pt",
            sanitize_control_tokens=True,
        )
        room = max_context - generate_kwargs.get("max_new_tokens", 64)
        if encoded["input_ids"].shape[1] > room:
            history.pop()
            output_stream.write(
                f"(the conversation is longer than the model's context of {max_context} tokens; "
                f"type {RESET} to start a new one)\n"
            )
            continue
        output_stream.write("model> ")
        output_stream.flush()
        output = model.generate(**encoded, streamer=streamer, **generate_kwargs)
        reply = tokenizer.decode(output[0, encoded["input_ids"].shape[1] :], skip_special_tokens=True).strip()
        output_stream.write("\n")
        history.append({"role": "assistant", "content": reply})
    return history
