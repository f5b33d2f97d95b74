"""Batched greedy and beam-search decoding; scores are summed token log-probabilities (incl. <eos>)."""

from __future__ import annotations

import torch

from .tokenizer import CharTokenizer

Hypothesis = tuple[list[int], float]


@torch.no_grad()
def greedy(decoder, feats: torch.Tensor, bos: int, eos: int, max_len: int) -> list[Hypothesis]:
    """The argmax caption of each image: ``[(token ids without bos/eos, log-prob), ...]``."""
    b = feats.size(0)
    state = decoder.start(feats)
    tokens = torch.full((b,), bos, dtype=torch.long, device=feats.device)
    scores = torch.zeros(b, device=feats.device)
    done = torch.zeros(b, dtype=torch.bool, device=feats.device)
    out = torch.zeros((b, max_len + 1), dtype=torch.long, device=feats.device)
    for t in range(max_len + 1):
        logp, state = decoder.step(state, tokens)
        if t == max_len:  # out of room: only <eos> is allowed
            tokens = torch.full_like(tokens, eos)
            best = logp[:, eos]
        else:
            best, tokens = logp.max(-1)
        scores += torch.where(done, torch.zeros_like(best), best)
        out[:, t] = torch.where(done, torch.full_like(tokens, eos), tokens)
        done |= tokens == eos
        if bool(done.all()):
            break
    result = []
    for row, score in zip(out.tolist(), scores.tolist(), strict=True):
        result.append((row[: row.index(eos)] if eos in row else row, float(score)))
    return result


@torch.no_grad()
def beam_search(decoder, feats: torch.Tensor, bos: int, eos: int, max_len: int,
                beam_width: int = 3) -> list[list[Hypothesis]]:
    """Up to ``beam_width`` finished captions per image, best (highest log-prob) first."""
    if beam_width < 1:
        raise ValueError("beam_width must be >= 1")
    b, k, dev = feats.size(0), beam_width, feats.device
    state = decoder.start(feats)
    state = decoder.select(state, torch.arange(b, device=dev).repeat_interleave(k))
    beam_scores = torch.full((b, k), float("-inf"), device=dev)
    beam_scores[:, 0] = 0.0
    seqs: list[list[list[int]]] = [[[] for _ in range(k)] for _ in range(b)]
    tokens = torch.full((b * k,), bos, dtype=torch.long, device=dev)
    finished: list[list[Hypothesis]] = [[] for _ in range(b)]
    closed = [False] * b
    for t in range(max_len + 1):
        logp, state = decoder.step(state, tokens)
        vocab = logp.size(-1)
        if t == max_len:  # out of room: only <eos> is allowed
            forced = torch.full_like(logp, float("-inf"))
            forced[:, eos] = logp[:, eos]
            logp = forced
        cand = (beam_scores[:, :, None] + logp.view(b, k, vocab)).view(b, -1)
        top_scores, top_idx = cand.topk(min(2 * k, cand.size(1)), dim=-1)
        top_scores, top_idx = top_scores.tolist(), top_idx.tolist()
        new_scores = torch.full((b, k), float("-inf"), device=dev)
        new_tokens = torch.full((b, k), eos, dtype=torch.long, device=dev)
        parents = torch.arange(b, device=dev)[:, None].mul(k).expand(b, k).clone()
        new_seqs: list[list[list[int]]] = [[[] for _ in range(k)] for _ in range(b)]
        for i in range(b):
            if closed[i]:
                continue
            n = 0
            for score, flat in zip(top_scores[i], top_idx[i], strict=True):
                if score == float("-inf"):
                    break
                parent, tok = divmod(flat, vocab)
                if tok == eos:
                    finished[i].append((seqs[i][parent], score))
                    continue
                new_scores[i, n], new_tokens[i, n], parents[i, n] = score, tok, i * k + parent
                new_seqs[i][n] = [*seqs[i][parent], tok]
                n += 1
                if n == k:
                    break
            best_open = float(new_scores[i].max())
            finished[i].sort(key=lambda h: -h[1])
            # Log-probs only fall as captions grow: no open beam can beat k finished ones above it.
            if len(finished[i]) >= k and finished[i][k - 1][1] >= best_open or n == 0:
                closed[i] = True
                new_scores[i] = float("-inf")
        if all(closed):
            break
        state = decoder.select(state, parents.view(-1))
        beam_scores, tokens, seqs = new_scores, new_tokens.view(-1), new_seqs
    return [sorted(f, key=lambda h: -h[1])[:k] for f in finished]


def decode_features(decoder, feats: torch.Tensor, tokenizer: CharTokenizer, max_len: int,
                    beam_width: int = 1) -> list[dict]:
    """Captions for a batch of encoder features: ``{"caption", "score", "alternatives"}`` each."""
    was_training = decoder.training
    decoder.eval()
    try:
        if beam_width <= 1:
            return [{"caption": tokenizer.decode(ids), "score": score, "alternatives": []}
                    for ids, score in greedy(decoder, feats, tokenizer.bos_id, tokenizer.eos_id, max_len)]
        results = []
        for hyps in beam_search(decoder, feats, tokenizer.bos_id, tokenizer.eos_id, max_len, beam_width):
            caps = [{"caption": tokenizer.decode(ids), "score": score} for ids, score in hyps]
            results.append({**caps[0], "alternatives": caps[1:]})
        return results
    finally:
        decoder.train(was_training)
