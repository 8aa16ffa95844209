"""bpf_object.c's attach modes as Python names them, checked without root."""

from pyscan.native import XDP_MODES, xdp_detach


def test_modes_are_the_kernel_xdp_flags() -> None:
    # XDP_FLAGS_SKB_MODE = 1 << 1, XDP_FLAGS_DRV_MODE = 1 << 2 (linux/if_link.h)
    assert XDP_MODES == {"native": 4, "generic": 2}


def test_unknown_mode_is_rejected_with_the_accepted_names() -> None:
    try:
        xdp_detach(1, mode="offload")
    except ValueError as error:
        assert "offload" in str(error) and "native" in str(error) and "generic" in str(error)
    else:
        raise AssertionError("mode 'offload' was accepted")
