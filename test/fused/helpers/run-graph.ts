import { encodeModel, type ModelProto } from '../../../src/model/onnx/proto.js';
import { loadOrt } from '../../../src/model/ort-runtime.js';

/** Runs a small graph once on onnxruntime's CPU provider; every output as plain numbers (int64 included). */
export async function runGraph(model: ModelProto, feeds: Record<string, unknown>): Promise<Record<string, number[]>> {
  const session = await loadOrt().InferenceSession.create(encodeModel(model));
  try {
    const out = await session.run(feeds as never);
    return Object.fromEntries(Object.entries(out).map(([name, t]) => [name, Array.from(t.data as ArrayLike<number | bigint>, Number)]));
  } finally {
    await session.release();
  }
}
