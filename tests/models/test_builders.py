import pytest
import torch
from torch import nn

from dglsim.errors import InvalidArgument
from dglsim.models import ARCHITECTURES, HEADS, NetworkSpec, build_network, even_splits, make_head, summarize

CASES = [
    # arch, k, input, depth, expected per-module output shapes (C, H, W) at the default width
    ("authors_cnn", 6, (3, 32, 32), None, [(128, 32, 32), (128, 32, 32), (256, 16, 16), (256, 16, 16), (512, 8, 8), (512, 8, 8)]),
    ("learning_curve_cnn", 4, (3, 32, 32), None, [(64, 32, 32), (128, 16, 16), (128, 16, 16), (256, 8, 8)]),
    ("authors_buffer_cnn", 4, (3, 32, 32), None, [(32, 32, 32), (32, 32, 32), (64, 16, 16), (64, 16, 16)]),
    ("dni_cnn", 3, (3, 32, 32), None, [(128, 10, 10), (128, 3, 3), (128, 1, 1)]),
    ("vgg", 5, (3, 32, 32), 13, [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4), (512, 1, 1)]),
    ("vgg", 2, (3, 32, 32), 19, [(256, 8, 8), (512, 1, 1)]),
    ("resnet_cifar", 4, (3, 32, 32), 20, [(16, 32, 32), (32, 16, 16), (64, 8, 8), (64, 8, 8)]),
    ("resnet_cifar", 2, (3, 32, 32), 110, [(32, 16, 16), (64, 8, 8)]),
    ("resnet_imagenet", 4, (3, 64, 64), 18, [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4)]),
]


@pytest.mark.parametrize(("arch", "k", "shape", "depth", "expected"), CASES, ids=[f"{c[0]}-{c[3]}-k{c[1]}" for c in CASES])
def test_module_output_shapes(arch, k, shape, depth, expected):
    net = build_network(NetworkSpec(arch=arch, k=k, depth=depth, input_shape=shape, head="linear"), seed=0)
    assert net.k == k and net.output_shapes() == expected
    x = torch.randn(2, *shape)
    assert [tuple(logits.shape) for logits in net.all_logits(x)] == [(2, 10)] * k
    assert net(x).shape == (2, 10)


def _conv_bn(cin, cout, kernel=3):
    return cin * cout * kernel * kernel + 2 * cout  # conv without bias, BN affine


@pytest.mark.parametrize("width", [8, 128])
def test_authors_cnn_parameter_count_is_the_closed_form(width):
    w = width
    widths = [3, w, w, 2 * w, 2 * w, 4 * w, 4 * w]
    expected = sum(_conv_bn(a, b) for a, b in zip(widths, widths[1:]))
    net = build_network(NetworkSpec(arch="authors_cnn", k=6, width=w, head="linear"), seed=0)
    assert sum(p.numel() for s in net.stages for p in s.parameters()) == expected
    assert sum(r.stage_params for r in summarize(net)) == expected


def test_vgg_depth_counts_conv_layers():
    for depth in (13, 19):
        net = build_network(NetworkSpec(arch="vgg", depth=depth, k=1, head="linear"), seed=0)
        assert sum(isinstance(m, nn.Conv2d) for m in net.stages.modules()) == depth - 3  # + 3 FC layers in the original


def test_resnet_cifar_depth_counts_weighted_layers():
    for depth in (20, 110):
        net = build_network(NetworkSpec(arch="resnet_cifar", depth=depth, k=1, head="linear"), seed=0)
        convs = [m for m in net.stages.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
        assert len(convs) + 1 == depth  # 3x3 convs + the classifier (1x1 projections are not counted)


@pytest.mark.parametrize("head", HEADS)
def test_heads_map_features_to_logits_and_mlp_sr_follows_the_paper(head):
    module = make_head(head, (32, 16, 16), classes=7, width=24)
    assert module(torch.randn(3, 32, 16, 16)).shape == (3, 7)
    if head == "mlp_sr":
        convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
        linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
        assert [c.kernel_size for c in convs] == [(1, 1)] * 3 and len(linears) == 4
        assert module[0].output_size == (4, 4)  # a quarter of the 16x16 resolution


def test_light_heads_cost_a_few_percent_except_on_the_first_module():
    """The paper's point for MLP-SR-aux: past the first (3-channel input) module the head is a
    small fraction of the module's compute."""
    rows = summarize(build_network(NetworkSpec(arch="authors_cnn", k=6, head="mlp_sr"), seed=0))
    assert all(0 < r.head_share < 0.08 for r in rows[1:])
    assert all(r.head_macs > 0 and r.stage_macs > 0 for r in rows)


def test_splits_place_module_boundaries():
    net = build_network(NetworkSpec(arch="authors_cnn", k=2, splits=(4,), head="linear"), seed=0)
    assert [len(s) for s in net.stages] == [4, 2]
    assert even_splits(6, 3) == (2, 4) and even_splits(8, 3) == (3, 5)


def test_same_seed_same_weights_and_global_rng_untouched():
    state = torch.random.get_rng_state()
    a = build_network(NetworkSpec(arch="dni_cnn", k=3), seed=5)
    b = build_network(NetworkSpec(arch="dni_cnn", k=3), seed=5)
    c = build_network(NetworkSpec(arch="dni_cnn", k=3), seed=6)
    assert torch.equal(torch.random.get_rng_state(), state)
    pa, pb, pc = (torch.cat([p.flatten() for p in n.parameters()]) for n in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)


@pytest.mark.parametrize(("spec", "match"), [
    (dict(arch="dni_cnn", k=4), "'k' of NetworkSpec must be <= the 3 units"),
    (dict(arch="authors_cnn", k=2, splits=(6,)), "'splits' of NetworkSpec must be < the 6 units"),
    (dict(arch="authors_cnn", depth=3), "'depth' of NetworkSpec must be None for arch 'authors_cnn'"),
    (dict(arch="vgg", depth=12), "'depth' of vgg must be one of"),
    (dict(arch="resnet_cifar", depth=21), "'depth' of resnet_cifar must be an int 6n\\+2"),
])
def test_build_rejects_impossible_networks(spec, match):
    with pytest.raises(InvalidArgument, match=match):
        build_network(NetworkSpec(**spec), seed=0)


def test_every_architecture_is_tested():
    assert {c[0] for c in CASES} == set(ARCHITECTURES)


def test_the_authors_buffer_network_and_heads():
    from dglsim.models import summarize

    net = build_network(NetworkSpec(arch="authors_buffer_cnn", k=4, width=32, head="authors_mlp"), seed=0)
    assert net.output_shapes() == [(32, 32, 32), (32, 32, 32), (64, 16, 16), (64, 16, 16)]
    hidden = [[m.out_features for m in head if isinstance(m, torch.nn.Linear)] for head in net.heads]
    assert hidden == [[128, 128, 128, 10], [128, 128, 128, 10], [256, 256, 256, 10], [256, 256, 256, 10]]  # 4C: pooled to 2x2
    assert all(m.bias is not None for head in net.heads for m in head if isinstance(m, torch.nn.Linear))
    rows = summarize(net)
    assert all(r.stage_activations > 0 and r.head_activations > 0 for r in rows)
    # a 32x32x32 conv+BN+ReLU stage writes three 32,768-element tensors per sample
    assert rows[1].stage_activations == 3 * 32 * 32 * 32
