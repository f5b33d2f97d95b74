import torch

from ogiri_captioner.data import read_manifests
from ogiri_captioner.features import FeatureCache, extract_features
from ogiri_captioner.model import build_encoder


def test_features_are_computed_once_and_then_served_from_the_fp16_cache(synthetic, tmp_path):
    paths = sorted({r.image for r in read_manifests(synthetic["val"], synthetic["images"])})[:10]
    enc, _ = build_encoder("resnet18", grid=2)
    calls = []
    enc.register_forward_hook(lambda *_: calls.append(1))
    key = f"{enc.fingerprint()}-64"
    cache = FeatureCache(tmp_path, key)
    first = extract_features(enc, paths, 64, torch.device("cpu"), cache, batch_size=4)
    cache.save()
    assert first.dtype == torch.float16 and first.shape == (10, 4, 512)
    assert len(calls) == 3 and (tmp_path / f"{key}.pt").is_file()
    calls.clear()
    again = extract_features(enc, paths, 64, torch.device("cpu"), FeatureCache(tmp_path, key), batch_size=4)
    assert calls == [] and torch.equal(first, again)
    # a partly cached set only encodes the new images, and matches a from-scratch pass
    more = paths + sorted({r.image for r in read_manifests(synthetic["test"], synthetic["images"])})[:3]
    mixed = extract_features(enc, more, 64, torch.device("cpu"), FeatureCache(tmp_path, key), batch_size=4)
    assert len(calls) == 1
    torch.testing.assert_close(mixed, extract_features(enc, more, 64, torch.device("cpu"), None), atol=0, rtol=0)


def test_corrupt_cache_file_is_rebuilt(tmp_path):
    (tmp_path / "k.pt").write_bytes(b"garbage")
    assert FeatureCache(tmp_path, "k").items == {}
