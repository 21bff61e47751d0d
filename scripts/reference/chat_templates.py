#!/usr/bin/env python3
"""Renders chat templates with Python jinja2 exactly as transformers' apply_chat_template does
(ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, its tojson and
raise_exception), writing the fixture that Tailor's template engine is tested against.

    python3 scripts/reference/chat_templates.py > Tests/TailorModelsTests/Fixtures/chat-templates.json
"""
import json, os, sys
import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

here = os.path.dirname(os.path.abspath(__file__))

def env():
    e = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    def raise_exception(msg): raise jinja2.exceptions.TemplateError(msg)
    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)
    e.filters["tojson"] = tojson
    e.globals["raise_exception"] = raise_exception
    return e

TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city, now.",
          "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name, e.g. Zürich"},
          "days": {"type": "integer"}}, "required": ["city"]}}}]

CONVERSATIONS = {
    "single": [{"role": "user", "content": "Hello!"}],
    "system+multi": [
        {"role": "system", "content": "You are a terse assistant.  "},
        {"role": "user", "content": "What is RAG?"},
        {"role": "assistant", "content": "Retrieval-augmented generation: look things up, then answer."},
        {"role": "user", "content": "  And fine-tuning?\n"},
    ],
    "multi-no-system": [
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "Another, with unicode: café ☕ 日本"},
    ],
    "quotes-and-braces": [
        {"role": "system", "content": "Answer in JSON like {\"a\": 1}. Use 'single' quotes too."},
        {"role": "user", "content": "{% not a tag %} {{ nor this }}"},
    ],
}

TEMPLATES = {
    "smollm2": {"bos": "<|im_start|>", "eos": "<|im_end|>"},
    "llama-3.2": {"bos": "<|begin_of_text|>", "eos": "<|eot_id|>", "extra": {"date_string": "21 Nov 2026"}, "tools": True},
    "qwen2.5": {"bos": "", "eos": "<|im_end|>", "tools": True},
    "mistral-nemo": {"bos": "<s>", "eos": "</s>", "tools": True},
    "gemma-2": {"bos": "<bos>", "eos": "<eos>"},
    "phi-3.5": {"bos": "<s>", "eos": "<|endoftext|>"},
    "features": {"bos": "<s>", "eos": "</s>"},
}

def main():
    e = env()
    out = []
    for name, cfg in TEMPLATES.items():
        src = open(os.path.join(here, "templates", name + ".jinja")).read()
        tmpl = e.from_string(src)
        cases = []
        for conv_name, msgs in CONVERSATIONS.items():
            for gen in (True, False):
                for tools in ([None, TOOLS] if cfg.get("tools") else [None]):
                    ctx = dict(messages=msgs, add_generation_prompt=gen, bos_token=cfg["bos"], eos_token=cfg["eos"])
                    ctx.update(cfg.get("extra", {}))
                    if tools is not None:
                        ctx["tools"] = tools
                    case = {"conversation": conv_name, "add_generation_prompt": gen, "tools": tools is not None}
                    try:
                        case["output"] = tmpl.render(**ctx)
                    except jinja2.exceptions.TemplateError as err:
                        case["error"] = str(err)
                    cases.append(case)
        out.append({"name": name, "bos": cfg["bos"], "eos": cfg["eos"], "extra": cfg.get("extra", {}), "source": src, "cases": cases})
    json.dump({"jinja2": jinja2.__version__, "tools": TOOLS, "conversations": CONVERSATIONS, "templates": out},
              sys.stdout, ensure_ascii=False, indent=1)

main()
