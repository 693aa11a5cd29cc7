"""The shard format writers: tar bytes as tarfile writes them."""

from __future__ import annotations


def test_tar_writer_bytes_equal_tarfile_ustar(tmp_path):
    """The hand-written member headers are exactly what tarfile writes for the same members."""
    import io
    import random
    import tarfile

    from shards.format import AtomicTarWriter

    rng = random.Random(5)
    members = [(f"{i:09d}.{ext}", rng.randbytes(rng.randint(0, 3000))) for i in range(40) for ext in ("jpg", "json", "txt")]
    members += [("键值.txt", "中文说明".encode()), ("d" * 60 + "/" + "x" * 60 + ".txt", b"ustar prefix"),
                ("exact.bin", b"\x01" * 1024)]
    ours = tmp_path / "ours.tar"
    with AtomicTarWriter(ours) as w:
        for name, data in members:
            w.add_member(name, data)
    ref = io.BytesIO()
    with tarfile.open(fileobj=ref, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = len(data), 0, 0o644, 0, 0, "", ""
            tar.addfile(info, io.BytesIO(data))
    assert ours.read_bytes() == ref.getvalue()
    with tarfile.open(ours) as tar:
        assert [(m.name, tar.extractfile(m).read()) for m in tar] == members
