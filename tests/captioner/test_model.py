import pytest
import torch

from ogiri_captioner.model import build_decoder, build_encoder
from ogiri_captioner.training import sequence_loss


@pytest.mark.parametrize("kind", ["lstm", "transformer"])
def test_teacher_forcing_matches_step_by_step_decoding(kind):
    torch.manual_seed(0)
    dec = build_decoder(kind, vocab_size=20, feat_dim=16, cells=4, embed_dim=32, hidden_dim=32, max_len=10).eval()
    feats = torch.randn(3, 4, 16).half()
    tokens = torch.tensor([[1, 5, 6, 7, 2], [1, 8, 9, 2, 0], [1, 4, 2, 0, 0]])
    logp_forced = torch.log_softmax(dec(feats, tokens[:, :-1]).float(), -1)
    state = dec.start(feats)
    for t in range(tokens.size(1) - 1):
        logp_step, state = dec.step(state, tokens[:, t])
        real = tokens[:, t] != 0
        torch.testing.assert_close(logp_step[real], logp_forced[real, t], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("kind", ["lstm", "transformer"])
def test_padding_does_not_change_the_loss(kind):
    torch.manual_seed(0)
    dec = build_decoder(kind, vocab_size=20, feat_dim=16, cells=4, embed_dim=32, hidden_dim=32, max_len=10).eval()
    feats = torch.randn(2, 4, 16)
    short = torch.tensor([[1, 5, 6, 2], [1, 7, 2, 0]])
    padded = torch.cat([short, torch.zeros(2, 3, dtype=torch.long)], 1)
    torch.testing.assert_close(sequence_loss(dec, feats, short, 0), sequence_loss(dec, feats, padded, 0))
    # the loss covers exactly the non-pad targets: changing a pad-target logit source changes nothing
    manual = torch.nn.functional.cross_entropy(dec(feats, short[:, :-1]).reshape(-1, 20), short[:, 1:].reshape(-1),
                                               ignore_index=0)
    torch.testing.assert_close(sequence_loss(dec, feats, short, 0), manual)


def test_frozen_encoder_stays_in_eval_mode_and_keeps_a_spatial_grid():
    enc, source = build_encoder("resnet18", grid=2, seed=1)
    assert source == "random"
    enc.train()
    assert not enc.training and not any(m.training for m in enc.modules())
    assert not any(p.requires_grad for p in enc.parameters())
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    x = torch.zeros(2, 3, 64, 64)
    x[:, :, :, :32] = 2.0  # bright left half
    feats = enc(x)
    assert feats.shape == (2, 4, 512)
    assert all(torch.equal(before[k], v) for k, v in enc.state_dict().items())
    # left cells (0, 2) differ from right cells (1, 3): position survives pooling
    assert not torch.allclose(feats[:, 0], feats[:, 1])


def test_weights_from_the_pretrained_channel(tmp_path, caplog):
    import torchvision

    torch.manual_seed(123)
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "resnet18-custom.pth")
    enc, source = build_encoder("resnet18", grid=2, pretrained_dir=tmp_path)
    assert source.endswith("resnet18-custom.pth")
    rand, _ = build_encoder("resnet18", grid=2)
    assert enc.fingerprint() != rand.fingerprint()
    assert "RANDOM init" in caplog.text  # only the second one warned
    (tmp_path / "resnet18-custom.pth").unlink()
    torch.save(torchvision.models.resnet34().state_dict(), tmp_path / "other.pth")
    with pytest.raises(ValueError, match="do not fit resnet18"):
        build_encoder("resnet18", grid=2, pretrained_dir=tmp_path)


def test_unknown_names_are_clear_errors():
    with pytest.raises(ValueError, match="unknown encoder"):
        build_encoder("not_a_net")
    with pytest.raises(ValueError, match="unknown decoder"):
        build_decoder("gru", 10, 8, 4, 16, 16, 10)


def test_weights_from_the_local_torchvision_cache(tmp_path):
    import torchvision

    saved = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path))
    try:
        name = torchvision.models.ResNet18_Weights.DEFAULT.url.rsplit("/", 1)[1]
        (tmp_path / "checkpoints").mkdir()
        torch.manual_seed(5)
        torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "checkpoints" / name)
        enc, source = build_encoder("resnet18", grid=2)
    finally:
        torch.hub.set_dir(saved)
    assert source == str(tmp_path / "checkpoints" / name)
    assert enc.fingerprint() != build_encoder("resnet18", grid=2)[0].fingerprint()
