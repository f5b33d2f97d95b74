"""Spot interruption: a run resumed from the epoch checkpoint continues exactly like an uninterrupted one."""

import pytest
import torch
from conftest import make_config, quiet_train


@pytest.mark.parametrize("decoder", ["lstm", "transformer"])
def test_resume_continues_with_the_same_next_step_loss(synthetic, tmp_path, decoder):
    # a fresh feature cache: the first run encodes the images, the later ones read the cache, and
    # that must not change anything (model init may not depend on the cache state)
    common = {"decoder": decoder, "embed_dim": 64, "hidden_dim": 64, "feature_cache_dir": str(tmp_path / "fc"),
              "dropout": 0.2}
    straight = quiet_train(make_config(synthetic, tmp_path / "m1", epochs=2,
                                       checkpoint_dir=str(tmp_path / "ck1"), **common))
    quiet_train(make_config(synthetic, tmp_path / "m2", epochs=1, checkpoint_dir=str(tmp_path / "ck2"), **common))
    assert (tmp_path / "ck2" / "checkpoint.pt").is_file()
    resumed = quiet_train(make_config(synthetic, tmp_path / "m2", epochs=2, checkpoint_dir=str(tmp_path / "ck2"),
                                      **common))
    assert [h["epoch"] for h in resumed["history"]] == [1, 2]  # epoch 1 restored from the checkpoint
    a, b = straight["history"][1]["step_losses"], resumed["history"][1]["step_losses"]
    assert a[0] == pytest.approx(b[0], abs=1e-6)
    assert a == pytest.approx(b, abs=1e-5)
    assert resumed["weights_sha256"] == straight["weights_sha256"]
    # and the first epoch's steps really moved the weights (the comparison is not vacuous)
    assert straight["history"][1]["step_losses"][0] != straight["history"][0]["step_losses"][0]


def test_checkpoint_from_other_encoder_weights_is_refused(synthetic, feature_cache, tmp_path):
    quiet_train(make_config(synthetic, tmp_path / "m", epochs=1, checkpoint_dir=str(tmp_path / "ck"),
                            embed_dim=32, hidden_dim=32, feature_cache_dir=str(feature_cache)))
    with pytest.raises(ValueError, match="different encoder weights"):
        quiet_train(make_config(synthetic, tmp_path / "m", epochs=2, checkpoint_dir=str(tmp_path / "ck"),
                                embed_dim=32, hidden_dim=32, seed=7))
    assert torch.load(tmp_path / "ck" / "checkpoint.pt", weights_only=True)["epoch"] == 1
