"""Structs that cross between bpf_object.c and Python have the size both sides assume."""

from pyscan.native import XDP_MODES, ffi, xdp_detach


def test_test_result_struct_matches_c_static_assert() -> None:
    assert ffi.sizeof("struct pyscan_bpf_test_result") == 16


def test_xdp_attachment_struct_matches_c_static_assert() -> None:
    assert ffi.sizeof("struct pyscan_xdp_attachment") == 16


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
