/**
 * Sessions for models built in memory whose weights stay in a model folder's external data
 * (the fused loops reference weights.data instead of copying it).
 */
import { resolve } from 'node:path';
import type * as ort from 'onnxruntime-node';
import { encodeModel, type ModelProto } from '../onnx/proto.js';
import type { Ort } from '../ort-runtime.js';

/**
 * Loads `model` from bytes, with onnxruntime's session entry
 * `session.model_external_initializers_file_folder_path` set to `weightsFolder`, against which the
 * initializers' relative external-data locations resolve. Nothing is written anywhere. (A model file
 * in another folder with a symlink to weights.data does not work: onnxruntime 1.29 refuses external
 * data that resolves outside the model file's own folder.)
 */
export async function createSessionFromModel(ortModule: Ort, model: ModelProto, weightsFolder: string, options: ort.InferenceSession.SessionOptions): Promise<ort.InferenceSession> {
  return ortModule.InferenceSession.create(encodeModel(model), withWeightsFolder(options, weightsFolder));
}

/** `options` for a model loaded from bytes whose external data lies in `weightsFolder` (see createSessionFromModel). */
export function withWeightsFolder(options: ort.InferenceSession.SessionOptions, weightsFolder: string): ort.InferenceSession.SessionOptions {
  const extra = (options.extra ?? {}) as { session?: Record<string, unknown> };
  const session = { ...(extra.session ?? {}), model_external_initializers_file_folder_path: resolve(weightsFolder) };
  return { ...options, extra: { ...extra, session } };
}
