import pytest
import torch

from ogiri_captioner.artifacts import load_model_dir
from ogiri_captioner.data import read_manifests
from ogiri_captioner.decoding import beam_search, greedy
from ogiri_captioner.model import build_decoder
from ogiri_captioner.training import sequence_loss


@pytest.fixture(scope="module")
def model_and_feats(trained, synthetic):
    cap = load_model_dir(trained["model_dir"], "cpu")
    images = sorted({r.image for r in read_manifests(synthetic["test"], synthetic["images"])})[:24]
    batch = torch.stack([cap.transform(__import__("PIL.Image").Image.open(p).convert("RGB")) for p in images])
    return cap, cap.encoder(batch).half()


def _logprob(decoder, feats, ids, tok):
    seq = torch.tensor([[tok.bos_id, *ids, tok.eos_id]])
    n = len(ids) + 1
    with torch.no_grad():
        return -float(sequence_loss(decoder, feats[None], seq, tok.pad_id)) * n


def test_greedy_and_beam_are_well_formed_and_beam_scores_at_least_greedy(model_and_feats):
    cap, feats = model_and_feats
    tok, allowed = cap.tokenizer, set(cap.tokenizer.itos[4:])
    g = greedy(cap.decoder, feats, tok.bos_id, tok.eos_id, cap.max_len)
    b = beam_search(cap.decoder, feats, tok.bos_id, tok.eos_id, cap.max_len, beam_width=3)
    assert len(g) == len(b) == len(feats)
    for (gids, gscore), beams, f in zip(g, b, feats, strict=True):
        assert 0 < len(gids) <= cap.max_len and set(tok.decode(gids)) <= allowed
        assert 1 <= len(beams) <= 3
        assert [s for _, s in beams] == sorted((s for _, s in beams), reverse=True)
        assert beams[0][1] >= gscore - 1e-4
        for ids, score in beams:
            assert ids and tok.eos_id not in ids and tok.bos_id not in ids and tok.pad_id not in ids
            # the reported score is the caption's log-probability under the model
            assert score == pytest.approx(_logprob(cap.decoder, f, ids, tok), abs=1e-3)
        assert gscore == pytest.approx(_logprob(cap.decoder, f, gids, tok), abs=1e-3)
    assert any(b[i][0][1] > g[i][1] + 1e-6 for i in range(len(g))) or all(
        b[i][0][0] == g[i][0] for i in range(len(g)))


def test_beam_width_one_equals_greedy(model_and_feats):
    cap, feats = model_and_feats
    tok = cap.tokenizer
    g = greedy(cap.decoder, feats, tok.bos_id, tok.eos_id, cap.max_len)
    b = beam_search(cap.decoder, feats, tok.bos_id, tok.eos_id, cap.max_len, beam_width=1)
    assert [h[0][0] for h in b] == [ids for ids, _ in g]


@pytest.mark.parametrize("kind", ["lstm", "transformer"])
def test_untrained_decoders_respect_max_len(kind):
    torch.manual_seed(0)
    dec = build_decoder(kind, vocab_size=12, feat_dim=8, cells=4, embed_dim=16, hidden_dim=16, max_len=5).eval()
    feats = torch.randn(4, 4, 8)
    for ids, _ in greedy(dec, feats, 1, 2, max_len=5):
        assert len(ids) <= 5 and 2 not in ids
    for beams in beam_search(dec, feats, 1, 2, max_len=5, beam_width=4):
        assert beams and all(len(ids) <= 5 for ids, _ in beams)
    with pytest.raises(ValueError, match="beam_width"):
        beam_search(dec, feats, 1, 2, 5, beam_width=0)
