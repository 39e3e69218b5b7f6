/**
 * Turning a user message into a chat prompt: the tokenizer's own chat_template (tokenizer_config.json
 * or chat_template.jinja) rendered with @huggingface/jinja; for tokenizers that ship no template, the
 * two common formats written out by hand when their tokens exist: Llama-3 (header tokens) and ChatML.
 */
import { Template } from '@huggingface/jinja';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tokenIdOf, type LoadedTokenizer } from '../tokenizer/load.js';
import { UserError } from '../util/errors.js';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** tokenizer_config.json writes special tokens as a string or as {content: string, ...}. */
function tokenContent(value: unknown): string {
  if (typeof value === 'string') return value;
  const content = (value as { content?: unknown } | null)?.content;
  return typeof content === 'string' ? content : '';
}

/** The template text the tokenizer ships, if any. */
function shippedTemplate(tokenizer: LoadedTokenizer): string | undefined {
  const fromConfig = tokenizer.config.chat_template;
  if (typeof fromConfig === 'string') return fromConfig;
  const file = join(tokenizer.info.dir, 'chat_template.jinja');
  return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
}

/** The prompt text for `messages`, ending with the assistant's turn opened. */
export function renderChat(tokenizer: LoadedTokenizer, messages: readonly ChatMessage[]): string {
  const template = shippedTemplate(tokenizer);
  if (!template) return fallbackChat(tokenizer, messages);
  try {
    return new Template(template).render({
      messages,
      add_generation_prompt: true,
      bos_token: tokenContent(tokenizer.config.bos_token),
      eos_token: tokenContent(tokenizer.config.eos_token),
    });
  } catch (error) {
    throw new UserError(`--chat: ${tokenizer.info.name}'s chat template failed to render: ${(error as Error).message.split('\n')[0]}`);
  }
}

export function fallbackChat(tokenizer: LoadedTokenizer, messages: readonly ChatMessage[]): string {
  const has = (token: string) => tokenIdOf(tokenizer.json, token) !== undefined;
  if (has('<|start_header_id|>') && has('<|end_header_id|>') && has('<|eot_id|>')) {
    const bos = tokenContent(tokenizer.config.bos_token) || (has('<|begin_of_text|>') ? '<|begin_of_text|>' : '');
    const turn = (role: string, content: string) => `<|start_header_id|>${role}<|end_header_id|>\n\n${content.trim()}<|eot_id|>`;
    return bos + messages.map((m) => turn(m.role, m.content)).join('') + '<|start_header_id|>assistant<|end_header_id|>\n\n';
  }
  if (has('<|im_start|>') && has('<|im_end|>')) {
    return messages.map((m) => `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`).join('') + '<|im_start|>assistant\n';
  }
  throw new UserError(`--chat: ${tokenizer.info.name} ships no chat template, and it is neither a Llama-3 nor a ChatML tokenizer`);
}
