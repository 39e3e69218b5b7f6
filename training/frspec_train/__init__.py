"""Training recipe for fr-spec's model sets: a Llama-architecture target with the Llama-3 tokenizer,
its EAGLE-1/2 draft head, and a small plain draft LM (see training/README.md)."""
