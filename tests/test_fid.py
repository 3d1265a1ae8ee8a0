"""FID and KID (docs/fid.md): the Fréchet distance against closed forms, KID's unbiasedness,
convmesh's statistics files, Inception-v3's two published weight layouts (and its topology against
tf.keras where tensorflow is installed), the offline proxy features."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import linalg

from lmnet.errors import CorruptFileError, DataError
from lmnet.fid.features import extract_features
from lmnet.fid.metrics import activation_statistics, frechet_distance, kernel_inception_distance, polynomial_kernel
from lmnet.fid.stats import FidStats, fid_stats_name, read_fid_stats, write_fid_stats
from lmnet.fid.inception import (FEATURES_NAME, InceptionV3, _ClassifierHeads, detect_layout, load_inception,
                                  published_state_shapes)
from lmnet.fid.proxy_features import PROXY_DIM, PROXY_NAME, ProxyFeatures, proxy_weights

ROOT = Path(__file__).resolve().parent.parent


# --- Fréchet distance ------------------------------------------------------------------------------

def _closed_form(mu1, mu2, eig1, eig2):
    """FID of two Gaussians whose covariances share eigenvectors (eigenvalues ``eig1``, ``eig2``)."""
    return float(np.sum((mu1 - mu2) ** 2) + np.sum(eig1 + eig2 - 2.0 * np.sqrt(eig1 * eig2)))


def test_frechet_distance_of_diagonal_gaussians_is_the_closed_form():
    rng = np.random.default_rng(0)
    d = 64
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    a, b = rng.uniform(0.1, 3.0, d), rng.uniform(0.1, 3.0, d)
    got = frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
    assert got == pytest.approx(_closed_form(mu1, mu2, a, b), rel=1e-6)
    assert frechet_distance(mu1, np.diag(a), mu1, np.diag(a)) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_of_full_commuting_covariances_is_the_closed_form():
    rng = np.random.default_rng(1)
    d = 48
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))  # shared eigenvectors: sigma1 · sigma2 = sigma2 · sigma1
    a, b = rng.uniform(0.05, 4.0, d), rng.uniform(0.05, 4.0, d)
    s1, s2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d) + 1.0
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(_closed_form(mu1, mu2, a, b), rel=1e-6)


def _psd_root(s):
    w, v = np.linalg.eigh(s)
    return v @ np.diag(np.sqrt(np.clip(w, 0, None))) @ v.T


def test_rank_deficient_sample_covariances_give_the_psd_answer():
    """Fewer images than features (the usual case for a small set): both covariances are singular;
    tr sqrt(S1 S2) is taken independently as Σ sqrt(eig(S1½ S2 S1½))."""
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(12, 40)), rng.normal(size=(15, 40)) + 0.3
    (m1, s1), (m2, s2) = activation_statistics(x), activation_statistics(y)
    assert np.linalg.matrix_rank(s1) == 11
    r1 = _psd_root(s1)
    tr = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(r1 @ s2 @ r1), 0, None)))
    expected = np.sum((m1 - m2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr
    assert frechet_distance(m1, s1, m2, s2) == pytest.approx(expected, rel=1e-6)


def test_a_non_finite_square_root_falls_back_to_the_regularised_one():
    """The branch pytorch-fid's copy in convmesh breaks (``warnings`` not imported): sqrtm of a
    singular, non-diagonalisable product is infinite; eps is added to both diagonals and it warns."""
    s1, s2, eps = np.array([[0.0, 1.0], [0.0, 0.0]]), np.eye(2), 1e-6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert not np.all(np.isfinite(linalg.sqrtm(s1 @ s2)))
    with pytest.warns(RuntimeWarning, match="singular"):
        got = frechet_distance(np.zeros(2), s1, np.zeros(2), s2, eps=eps)
    off = np.eye(2) * eps
    expected = np.trace(s1) + np.trace(s2) - 2 * np.trace(linalg.sqrtm((s1 + off) @ (s2 + off)).real)
    assert np.isfinite(got) and got == pytest.approx(expected, rel=1e-9)


def test_an_imaginary_square_root_is_refused():
    with pytest.raises(ValueError, match="imaginary component"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), -np.eye(3))


def test_statistics_are_float64_mean_and_np_cov():
    acts = np.random.default_rng(3).normal(size=(30, 5)).astype(np.float32)
    mu, sigma = activation_statistics(acts)
    assert mu.dtype == sigma.dtype == np.float64 and sigma.shape == (5, 5)
    np.testing.assert_allclose(sigma, np.cov(acts.astype(np.float64), rowvar=False), rtol=1e-12)
    with pytest.raises(ValueError, match="at least 2"):
        activation_statistics(acts[:1])


# --- KID ---------------------------------------------------------------------------------------------

def test_polynomial_kernel_is_the_cubic_one():
    x, y = np.array([[1.0, 2.0, 3.0]]), np.array([[0.5, -1.0, 2.0]])
    assert polynomial_kernel(x, y)[0, 0] == pytest.approx((4.5 / 3 + 1) ** 3)


def test_kid_is_unbiased_and_grows_with_a_shift():
    """Many independent small draws of one distribution average to 0 (a biased V-statistic would not:
    its expectation here is several standard errors above 0); a shifted set is far above."""
    rng = np.random.default_rng(4)
    values = [kernel_inception_distance(rng.normal(size=(8, 16)), rng.normal(size=(8, 16)), subsets=1,
                                        subset_size=8)[0] for _ in range(400)]
    sem = np.std(values) / math.sqrt(len(values))
    assert abs(np.mean(values)) < 4 * sem
    a, b = rng.normal(size=(300, 16)), rng.normal(size=(300, 16))
    same, same_std = kernel_inception_distance(a, b, subsets=50, subset_size=100)
    shifted, _ = kernel_inception_distance(a, b + 0.5, subsets=50, subset_size=100)
    assert abs(same) < 3 * same_std + 1e-3
    assert shifted > 20 * max(abs(same), same_std)
    assert kernel_inception_distance(a, b + 0.5, subsets=50, subset_size=100)[0] == shifted  # seeded


# --- statistics files --------------------------------------------------------------------------------

def _stats(d=8, seed=5):
    acts = np.random.default_rng(seed).normal(size=(40, d))
    mu, sigma = activation_statistics(acts)
    return FidStats(mu, sigma, num_images=40, resolution=299, features="proxy-test")


def test_stats_file_round_trips_exactly_in_convmeshs_format(tmp_path):
    stats = _stats()
    path = tmp_path / fid_stats_name(299, "train")
    assert path.name == "precomputed_fid_299x299_train.npz"
    write_fid_stats(path, stats)
    back = read_fid_stats(path, dims=8)
    stored = np.tril(stats.sigma.astype(np.float32))
    assert np.array_equal(back.mu, stats.mu)
    assert np.array_equal(back.sigma, (stored + np.triu(stored.T, 1)).astype(np.float64))
    assert np.array_equal(back.sigma, back.sigma.T)
    assert (back.num_images, back.resolution, back.features) == (40, 299, "proxy-test")
    with np.load(path, allow_pickle=False) as z:  # what convmesh reads
        assert z["stats_s"].dtype == np.float32 and z["stats_s"].shape == (8, 8)
        assert np.array_equal(z["stats_s"] + np.triu(z["stats_s"].T, 1), back.sigma.astype(np.float32))
        assert int(z["num_images"]) == 40 and int(z["resolution"]) == 299
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporaries left


def _write_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("change, expected", [
    (lambda a: a.pop("stats_s"), "no array 'stats_s'"),
    (lambda a: a.update(stats_s=np.ones((8, 8), np.float32)), "stats_s: not lower-triangular"),
    (lambda a: a.update(stats_s=np.ones((8, 7), np.float32)), "stats_s: expected a float (8, 8)"),
    (lambda a: a.update(stats_m=np.zeros((8, 1))), "stats_m: expected a float vector"),
    (lambda a: a.update(stats_m=np.full(8, np.nan)), "NaN"),
    (lambda a: a.update(num_images=np.float64(3.0)), "num_images: expected a positive integer"),
    (lambda a: a.update(resolution=np.int64(0)), "resolution: expected a positive integer"),
    (lambda a: a.update(features=np.arange(3)), "features: expected a string scalar"),
])
def test_bad_stats_files_are_one_line(tmp_path, change, expected):
    stats = _stats()
    arrays = dict(stats_m=stats.mu, stats_s=np.tril(stats.sigma).astype(np.float32), num_images=np.int64(40),
                  resolution=np.int64(299))
    change(arrays)
    path = _write_npz(tmp_path / "precomputed_fid_299x299_train.npz", **arrays)
    with pytest.raises(CorruptFileError) as err:
        read_fid_stats(path)
    assert expected in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_stats_file_of_other_features_or_no_archive_is_one_line(tmp_path):
    path = tmp_path / "s.npz"
    write_fid_stats(path, _stats(d=8))
    with pytest.raises(CorruptFileError, match="stats_m: 8 features, expected 2048"):
        read_fid_stats(path, dims=2048)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip archive")
    with pytest.raises(CorruptFileError, match="not a readable .npz") as err:
        read_fid_stats(junk)
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match="no such FID statistics file"):
        read_fid_stats(tmp_path / "missing.npz")


# --- Inception-v3 ------------------------------------------------------------------------------------

def _published_facts(layout):
    shapes = published_state_shapes(layout)
    params = sum(math.prod(s) for k, s in shapes.items() if k.endswith(("weight", "bias")))
    return shapes, params


def test_the_published_key_sets():
    """torchvision's file: 484 tensors + 96 BatchNorm counters, 27,161,264 parameters (torchvision's
    documented ``num_params`` of ``Inception_V3_Weights.IMAGENET1K_V1``), AuxLogits, fc 1000×2048.
    pytorch-fid's: no AuxLogits, fc 1008×2048."""
    tv, tv_params = _published_facts("torchvision")
    assert tv_params == 27_161_264
    assert len([k for k in tv if not k.endswith("num_batches_tracked")]) == 484 and len(tv) == 580
    assert tv["Conv2d_1a_3x3.conv.weight"] == (32, 3, 3, 3) and tv["Conv2d_1a_3x3.bn.running_var"] == (32,)
    assert tv["fc.weight"] == (1000, 2048) and tv["AuxLogits.fc.weight"] == (1000, 768)
    assert tv["AuxLogits.conv1.conv.weight"] == (768, 128, 5, 5)
    assert tv["Mixed_6b.branch7x7_2.conv.weight"] == (128, 128, 1, 7)
    assert tv["Mixed_7c.branch3x3dbl_3b.conv.weight"] == (384, 384, 3, 1)
    fid, fid_params = _published_facts("tf-fid")
    assert not any(k.startswith("AuxLogits") for k in fid)
    assert fid["fc.weight"] == (1008, 2048) and fid["fc.bias"] == (1008,)
    assert set(fid) == {k for k in tv if not k.startswith("AuxLogits")}
    assert fid_params == tv_params - 3_326_696 + 8 * 2049  # no auxiliary head, 8 more classes


def _random_state(layout, seed, counters=True):
    """A state dict with the published keys of ``layout``, random but well-scaled values."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for part in (InceptionV3(layout), _ClassifierHeads(layout)):
        for key, value in part.state_dict().items():
            if key.endswith("num_batches_tracked"):
                if counters:
                    state[key] = torch.tensor(7)
            elif key.endswith("running_var"):
                state[key] = torch.rand(value.shape, generator=g) + 0.5
            elif key.endswith("conv.weight"):
                fan_in = math.prod(value.shape[1:])
                state[key] = torch.randn(value.shape, generator=g) * math.sqrt(2.0 / fan_in)
            else:  # BatchNorm scales near 1, shifts, means and the classifier near 0
                state[key] = torch.randn(value.shape, generator=g) * 0.1 + (1.0 if key.endswith("bn.weight") else 0.0)
    return state


@pytest.mark.parametrize("layout, counters", [("torchvision", True), ("tf-fid", False)])
def test_both_layouts_load_and_give_pool3_features(tmp_path, layout, counters):
    state = _random_state(layout, seed=0, counters=counters)
    path = tmp_path / f"{layout}.pth"
    torch.save(state, path)
    assert detect_layout(state) == layout
    model = load_inception(path, resize_input=False)
    assert model.features == FEATURES_NAME[layout] == f"inception-{layout}"
    images = torch.rand(2, 3, 80, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = model(images)
    assert out.shape == (2, 2048) and torch.all(torch.isfinite(out)) and float(out.std()) > 0
    reference = InceptionV3(layout, resize_input=False).eval()  # the same weights, loaded by hand
    reference.load_state_dict({k: v for k, v in state.items() if k in reference.state_dict()}, strict=False)
    with torch.no_grad():
        torch.testing.assert_close(out, reference(images), rtol=0, atol=0)
        other = InceptionV3("torchvision" if layout == "tf-fid" else "tf-fid", resize_input=False).eval()
        other.load_state_dict(reference.state_dict())
        assert not torch.allclose(other(images), out, rtol=1e-4, atol=1e-6)  # the pooling patches matter


@pytest.mark.parametrize("change, expected", [
    (lambda s: s.pop("Mixed_6c.branch7x7dbl_3.bn.running_mean"), "missing key 'Mixed_6c.branch7x7dbl_3.bn.running_mean'"),
    (lambda s: s.update({"Mixed_5b.extra.weight": torch.zeros(1)}), "unexpected key 'Mixed_5b.extra.weight'"),
    (lambda s: s.update({"Conv2d_2a_3x3.conv.weight": torch.zeros(32, 32, 1, 1)}),
     "Conv2d_2a_3x3.conv.weight: shape (32, 32, 1, 1), expected (32, 32, 3, 3)"),
])
def test_a_bad_state_dict_is_one_line_naming_the_key(tmp_path, change, expected):
    state = {k: torch.zeros(s) for k, s in published_state_shapes("tf-fid").items()}
    change(state)
    path = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(state, path)
    with pytest.raises(CorruptFileError) as err:
        load_inception(path)
    message = str(err.value)
    assert expected in message and str(path) in message and "\n" not in message


def test_foreign_files_are_one_line(tmp_path):
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(CorruptFileError, match="not an Inception-v3 state dict"):
        load_inception(tmp_path / "other.pth")
    (tmp_path / "junk.pth").write_bytes(b"garbage")
    with pytest.raises(CorruptFileError, match="cannot load Inception-v3 weights") as err:
        load_inception(tmp_path / "junk.pth")
    assert "\n" not in str(err.value)
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(CorruptFileError, match="expected a state dict"):
        load_inception(tmp_path / "list.pth")
    with pytest.raises(DataError, match="no such Inception-v3 weights file"):
        load_inception(tmp_path / "missing.pth")


def test_the_input_convention_and_the_pool_branches():
    """Images in (0, 1) are resized bilinearly to 299 (align_corners=False) and mapped by 2x − 1;
    pytorch-fid's patches: padding-free average pools in Mixed_5b-7b, a max pool in Mixed_7c."""
    torch.manual_seed(0)
    resizing = InceptionV3("tf-fid").eval()
    plain = InceptionV3("tf-fid", resize_input=False).eval()
    plain.load_state_dict(resizing.state_dict())
    images = torch.rand(1, 3, 75, 90)
    with torch.no_grad():
        resized = torch.nn.functional.interpolate(images, size=(299, 299), mode="bilinear", align_corners=False)
        torch.testing.assert_close(resizing(images), plain(resized), rtol=0, atol=0)
    assert [getattr(resizing, f"Mixed_{n}").pool for n in ("5b", "6e", "7b", "7c")] == ["avg_nopad"] * 3 + ["max"]
    assert {InceptionV3("torchvision").Mixed_7c.pool, InceptionV3("torchvision").Mixed_5b.pool} == {"avg"}


def _keras_layers(model, kind):
    """The ``kind`` layers of a Keras model in creation order (their automatic names count up)."""
    def uid(layer):
        tail = layer.name.rsplit("_", 1)
        return int(tail[1]) if len(tail) == 2 and tail[1].isdigit() else 0
    return sorted((l for l in model.layers if type(l).__name__ == kind), key=uid)


def test_the_topology_matches_tf_keras_inception_v3():
    """tf.keras' InceptionV3 (its BatchNorm has no scale and eps 0.001; its pool branches average
    without the padding, lmnet's ``keras`` pooling) with lmnet's random weights transferred gives the
    same pool3 features: every conv, padding, stride, branch order and concatenation agrees."""
    tf = pytest.importorskip("tensorflow")
    torch_model = InceptionV3("keras", resize_input=False).eval()
    state = _random_state("torchvision", seed=3)
    state = {k: (torch.ones_like(v) if k.endswith("bn.weight") else v) for k, v in state.items()
             if k in torch_model.state_dict()}
    torch_model.load_state_dict(state)
    keras = tf.keras.applications.InceptionV3(weights=None, include_top=False, pooling="avg", input_shape=(75, 75, 3))
    convs, bns = _keras_layers(keras, "Conv2D"), _keras_layers(keras, "BatchNormalization")
    basic = [m for m in torch_model.modules() if type(m).__name__ == "BasicConv2d"]
    assert len(convs) == len(bns) == len(basic) == 94
    for conv, bn, mine in zip(convs, bns, basic):
        conv.set_weights([mine.conv.weight.detach().permute(2, 3, 1, 0).numpy()])
        bn.set_weights([t.detach().numpy() for t in (mine.bn.bias, mine.bn.running_mean, mine.bn.running_var)])
        assert bn.epsilon == mine.bn.eps == 0.001
    images = torch.rand(2, 3, 75, 75, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        ours = torch_model(images).numpy()
    theirs = keras((2.0 * images - 1.0).permute(0, 2, 3, 1).numpy(), training=False).numpy()
    assert ours.shape == theirs.shape == (2, 2048)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4 * float(np.abs(theirs).max()))


# --- proxy features and extraction -------------------------------------------------------------------

def _images(kind, n, seed, size=48):
    """``n`` images (3, size, size) in [0, 1] from NumPy: ``blobs`` (smooth colour fields) or
    ``stripes`` (high-frequency grey stripes with noise)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    out = []
    for _ in range(n):
        if kind == "blobs":
            c = rng.uniform(0, 1, (3, 1, 1))
            img = c * np.exp(-((yy - rng.uniform()) ** 2 + (xx - rng.uniform()) ** 2) * 8) + 0.1
        else:
            img = 0.5 + 0.4 * np.sin(2 * np.pi * rng.uniform(6, 10) * (xx + rng.uniform() * yy))[None]
            img = img + rng.normal(0, 0.05, (3, size, size))
        out.append(torch.from_numpy(np.clip(img, 0, 1)).float().expand(3, size, size).contiguous())
    return out


_SUBPROCESS = """
import sys, numpy as np, torch
sys.path.insert(0, {root!r})
from lmnet.fid.proxy_features import ProxyFeatures
images = torch.from_numpy(np.random.default_rng(9).uniform(size=(4, 3, 48, 40)).astype(np.float32))
with torch.no_grad():
    np.save({out!r}, ProxyFeatures()(images).numpy())
"""


def test_the_proxy_is_deterministic_across_processes_and_leaves_torchs_rng_alone(tmp_path):
    state = torch.random.get_rng_state()
    proxy = ProxyFeatures()
    assert torch.equal(torch.random.get_rng_state(), state)
    assert proxy.features == PROXY_NAME == "proxy-randconv-v1"
    # the definition's fingerprint: the first weights of PCG64(20260501) as documented
    np.testing.assert_array_equal(proxy_weights()[0].ravel()[:3], np.float32([-0.45274818, 0.19055974, 0.4453152]))
    out = tmp_path / "features.npy"
    code = _SUBPROCESS.format(root=str(ROOT), out=str(out))
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)
    images = torch.from_numpy(np.random.default_rng(9).uniform(size=(4, 3, 48, 40)).astype(np.float32))
    with torch.no_grad():
        here = proxy(images).numpy()
    assert here.shape == (4, PROXY_DIM) == (4, 1008)
    np.testing.assert_allclose(np.load(out), here, rtol=1e-6, atol=1e-7)


def test_the_proxy_separates_different_image_sets():
    proxy = ProxyFeatures()
    blobs = extract_features(proxy, _images("blobs", 48, 10), batch_size=16)
    stripes = extract_features(proxy, _images("stripes", 24, 11), batch_size=16)
    halves = frechet_distance(*activation_statistics(blobs[:24]), *activation_statistics(blobs[24:]))
    different = frechet_distance(*activation_statistics(blobs[:24]), *activation_statistics(stripes))
    assert different > 5 * halves
    kid_halves = kernel_inception_distance(blobs[:24], blobs[24:], subsets=20, subset_size=20)[0]
    kid_different = kernel_inception_distance(blobs[:24], stripes, subsets=20, subset_size=20)[0]
    assert kid_different > 10 * abs(kid_halves)


def test_extract_features_batches_in_order_and_refuses_out_of_range_images():
    proxy = ProxyFeatures()
    images = _images("blobs", 7, 12)
    whole = extract_features(proxy, [torch.stack(images)], batch_size=100)
    done = []
    mixed = extract_features(proxy, [images[0], torch.stack(images[1:4]), *images[4:]], batch_size=3,
                             progress=done.append)
    assert mixed.dtype == np.float32 and mixed.shape == (7, PROXY_DIM) and done == [3, 6, 7]
    np.testing.assert_allclose(mixed, whole, rtol=1e-5, atol=1e-6)
    with pytest.raises(DataError, match=r"images 3–5 hold values in \[.*\]; expected \[0, 1\]"):
        extract_features(proxy, images[:3] + [images[3] * 2.0] + images[4:], batch_size=3)
    with pytest.raises(DataError, match="no images"):
        extract_features(proxy, [], batch_size=3)
