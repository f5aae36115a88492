"""download_wikiart.py against the service as it really is (tests/fake_hf.py imitates its quirks): the plan before
any image, robust HTTP, no painting twice, artists in the data, the parquet route through huggingface_hub, and bad
local input."""
import csv
import importlib
import io
import json
import os
import time

import numpy as np
import pytest
from PIL import Image

import download_wikiart as dw
from fake_hf import FakeHF, jpeg


def dl(fake, out, *extra):
    dw.main(["--out", str(out), "--viewer-url", fake.url, "--hub-url", fake.url, "--backoff", "0.01",
             "--workers", "4", *extra])
    return list(csv.DictReader(open(out / "manifest.csv")))


def test_the_plan_comes_before_any_image_and_names_the_command_for_a_short_style(serve, tmp_path, monkeypatch,
                                                                                   capsys):
    """Catches: no plan, a plan printed after the downloads, a short style without its command, pages read one at
    a time (a lock around the request), /info asked more than once."""
    fake = serve(counts={0: 30, 2: 5}, shuffle=False, extra=[(2, jpeg(2, 900 + i)) for i in range(40)])
    fake.cold_pages = {0: 0.3}
    seen = {}
    real = dw.print_plan

    def spy(*a):
        seen["assets"] = sum(fake.asset_requests.values())
        return real(*a)
    monkeypatch.setattr(dw, "print_plan", spy)
    monkeypatch.setattr(dw, "PAGE", 10)  # 4 pages of 10 rows, read at once
    for off in (10, 20, 30):
        fake.cold_pages[off] = 0.3
    dl(fake, tmp_path / "w", "--styles", "Baroque", "Rococo", "--per-style", "10")
    out = capsys.readouterr().out
    assert seen["assets"] == 0  # the plan is printed before a single image is fetched
    plan = out[out.index("plan (viewer, 35 rows, a partial export)"):]
    assert "Baroque" in plan and "30" in plan and "Rococo" in plan
    cmd = (f"python download_wikiart.py --out {tmp_path / 'w'} --viewer-url {fake.url} --hub-url {fake.url} "
           "--backoff 0.01 --workers 4 --styles Baroque Rococo --per-style 10 --source viewer+parquet")
    assert f"short: Rococo. To fill it from the full dataset: {cmd}  (reads up to 39 parquet shards, ~20 GB" in plan
    assert out.index("plan (") < out.index("short by 5")  # the plan, then the summary
    assert fake.max_pages_in_flight >= 2 and fake.info_requests == 1
    fake.partial = False  # the whole dataset served: nothing more to fetch anywhere
    dl(fake, tmp_path / "w2", "--styles", "Baroque", "Rococo", "--per-style", "50")
    out = capsys.readouterr().out
    assert "The viewer served every row of the dataset: it has no more paintings of these styles" in out
    assert "--source viewer+parquet" not in out


def test_robust_http_every_quirk_of_the_real_service(serve, tmp_path, monkeypatch, capsys):
    """Catches: a gzipped body taken as truncated; Retry-After as an HTTP date not understood or a huge one obeyed;
    a 404 for an evicted asset failing the image; a trickling body hanging the run; an oversized body kept; one
    failing page ending the run."""
    monkeypatch.setattr(dw, "DEADLINE", 1.5)  # per URL: room for a loaded CI machine, still far below the trickle
    monkeypatch.setattr(dw, "MAX_IMAGE_MB", 1)
    monkeypatch.setattr(dw, "RETRY_AFTER_CAP", 0.2)
    monkeypatch.setattr(dw, "PAGE", 20)
    fake = serve(counts={0: 60})
    baroque = list(range(60))
    fake.gzip = set(baroque[0:3])
    fake.evict = set(baroque[3:5])
    fake.trickle = {baroque[5]}
    fake.huge = {baroque[6]}
    fake.rate_limited_date = 2         # Retry-After: <HTTP date 60 s ahead>, capped at 0.2 s
    fake.retry_after_date_s = 60
    t0 = time.monotonic()
    fake.broken_pages = {40}           # rows 40-59: a 500 UnexpectedError, always
    rows = dl(fake, tmp_path / "w", "--styles", "Baroque", "--per-style", "45", "--retries", "2")
    err = capsys.readouterr().err
    assert time.monotonic() - t0 < 30  # the 60 s Retry-After was capped
    kept = {int(r["source_id"][2:]) for r in rows}
    assert kept == set(range(40)) - {5, 6}  # the broken page's rows are left out, the run goes on
    assert set(baroque[0:5]) <= kept        # gzipped and evicted images are kept
    assert not kept & {baroque[5], baroque[6]}
    assert "rows 40-59 could not be read (HTTP 500 UnexpectedError" in err and "run the same command later" in err
    assert "the server is trickling" in err and "larger than 1 MB: too large for a painting" in err
    assert "asked to wait" in err and "(Retry-After); waiting 0.2 s instead" in err
    # refused (404) until its page was read again; one re-read renews every URL on the page
    assert all(fake.asset_requests[i] <= 2 for i in fake.evict) and sum(fake.asset_requests[i] for i in fake.evict) > 2
    assert fake.requests["/rows"] >= 4 + 1
    for r in rows:  # gzip: the stored file is the image, not the gzip stream
        assert (tmp_path / "w" / r["file"]).read_bytes()[:3] == b"\xff\xd8\xff"


def test_a_killed_run_adopts_what_it_had_stored(serve, tmp_path, ctrl_c_at_store):
    """Catches: images in the pool whose record a kill -9 lost being downloaded again."""
    fake = serve(counts={0: 30})
    out = tmp_path / "w"
    ctrl_c_at_store(13)
    with pytest.raises(SystemExit):
        dl(fake, out, "--styles", "Baroque", "--per-style", "20", "--workers", "1")
    ctrl_c_at_store(None)
    state = json.load(open(out / ".state.json"))
    lost = sorted(state["images"])[:5]
    for sid in lost:  # as if the kill came before these records reached the disk
        del state["images"][sid]
    json.dump(state, open(out / ".state.json", "w"))
    rows = dl(fake, out, "--styles", "Baroque", "--per-style", "20")
    assert len(rows) == 20
    assert all(fake.asset_requests[int(sid[2:])] == 1 for sid in lost), (lost, fake.asset_requests)
    assert sum(fake.asset_requests.values()) <= 21  # at most the image the interrupt cut off, twice


def test_no_painting_twice(serve, tmp_path, capsys):
    """WikiArt holds some paintings under two rows. Catches: the same image kept twice (or once in train and once
    in val), duplicates not replaced by other paintings, no record of what was dropped."""
    fake = serve(counts={0: 30, 1: 30}, shuffle=False, duplicates={1: 0, 2: 0, 3: 10, 35: 20})  # 35: Cubism = Baroque
    rows = dl(fake, tmp_path / "w", "--styles", "Baroque", "Cubism", "--per-style", "30")
    assert len(rows) == 27 + 29 and len({r["sha256"] for r in rows}) == len(rows)
    dups = list(csv.DictReader(open(tmp_path / "w" / "duplicates.csv")))
    assert len(dups) == 4 and all(d["duplicate_of"] in {r["source_id"] for r in rows} for d in dups)
    assert "4 duplicate(s) left out (duplicates.csv)" in capsys.readouterr().out


def test_artists_spread_recorded_and_split_apart(serve, tmp_path, capsys):
    """Baroque has 4 artists in blocks (the export's artist order), Cubism one. Catches: the first rows taken (one
    artist), no artist in the manifest, --split-by-artist putting an artist in both splits, a one-artist style
    split silently."""
    fake = serve(counts={0: 40, 1: 20}, shuffle=False, artists={0: 4})
    rows = dl(fake, tmp_path / "w", "--styles", "Baroque", "Cubism", "--per-style", "12", "--split-by-artist",
              "--val-fraction", "0.25")
    out = capsys.readouterr().out
    baroque = [r for r in rows if r["style"] == "Baroque"]
    per_artist = {a: sum(r["artist"] == a for r in baroque) for a in {r["artist"] for r in baroque}}
    assert per_artist == {f"baroque-painter-{k}": 3 for k in range(4)}  # spread: 3 each, not 12 of the first
    assert {r["genre"] for r in rows} <= set(fake.genre_names) and all(r["genre"] for r in rows)
    train = {r["artist"] for r in baroque if r["split"] == "train"}
    val = {r["artist"] for r in baroque if r["split"] == "val"}
    assert val and train and not train & val and sum(r["split"] == "val" for r in baroque) == 3
    assert "--split-by-artist: Cubism: 1 artist(s) known, so train and val share them" in out
    assert "4 artists, top baroque-painter-0 25%" in out  # the plan and the summary say who paints each style
    assert "1 artist, top cubism-painter-0 100%" in out


def test_split_by_artist_keeps_each_artist_on_one_side_in_every_style(serve, tmp_path, capsys):
    """Four painters who each paint in all three styles, as WikiArt's do (Van Gogh: Realism and Post-Impressionism).
    Catches: artists kept apart style by style only, so that a painter trained on in one style is validated on in
    another (the report's "no artist in both" then false)."""
    painters = ["vincent-van-gogh", "boris-kustodiev", "pyotr-konchalovsky", "marc-chagall"]
    fake = serve(counts={0: 16, 1: 16, 2: 16}, shuffle=False, artists={0: painters, 1: painters, 2: painters})
    rows = dl(fake, tmp_path / "w", "--styles", "Baroque", "Cubism", "Rococo", "--per-style", "16",
              "--split-by-artist", "--val-fraction", "0.25")
    sides = {}
    for r in rows:
        sides.setdefault(r["artist"], set()).add(r["split"])
    assert set(sides) == set(painters) and all(len(s) == 1 for s in sides.values()), sides
    assert [sum(r["split"] == "val" and r["style"] == st for r in rows) for st in ("Baroque", "Cubism", "Rococo")] \
        == [4, 4, 4]
    assert "--split-by-artist: no artist has paintings in both train and val, in any style" in capsys.readouterr().out


def test_unknown_artist_is_not_one_painter(serve, tmp_path, capsys):
    """huggan/wikiart's artist label 0 is "Unknown Artist": paintings of many painters. Catches: all of them put on
    one side of --split-by-artist as if one artist (a style of them and one painter then cannot be split), and
    counted as the style's top artist."""
    fake = serve(counts={0: 12, 1: 12}, shuffle=False,
                 artists={0: ["Unknown Artist", "Unknown Artist", "francois-boucher"],
                          1: ["pablo-picasso", "juan-gris"]})
    rows = dl(fake, tmp_path / "w", "--styles", "Baroque", "Cubism", "--per-style", "12", "--split-by-artist",
              "--val-fraction", "0.25")
    out = capsys.readouterr().out
    unknown = [r for r in rows if r["style"] == "Baroque" and r["artist"] != "francois-boucher"]
    assert len(unknown) == 8 and {r["artist"] for r in unknown} == {""}
    assert sum(r["split"] == "val" for r in rows if r["style"] == "Baroque") == 3
    assert {r["split"] for r in unknown} == {"train", "val"}
    assert "1 artist, top francois-boucher 100%" in out and "Unknown Artist" not in out


def test_a_style_whose_artists_cannot_divide_at_the_share_is_named_with_its_share(serve, tmp_path, capsys):
    """Symbolism in the viewer's export is mostly Roerich: whole artists give its validation set 10%, not 20%.
    Catches: a split that quietly loses its balance."""
    fake = serve(counts={0: 20, 1: 20}, shuffle=False,
                 artists={0: ["nicholas-roerich"] * 9 + ["mikhail-vrubel"], 1: 4})
    rows = dl(fake, tmp_path / "w", "--styles", "Baroque", "Cubism", "--per-style", "20", "--split-by-artist")
    assert sum(r["split"] == "val" for r in rows if r["style"] == "Baroque") == 2
    out = capsys.readouterr().out
    assert "--split-by-artist: Baroque: val holds 2 of its 20 paintings (10%, not 20%): its artists' paintings " \
           "divide no closer" in out
    assert "Cubism: val holds" not in out


def test_the_full_dataset_is_filtered_by_style(serve, tmp_path):
    """partial: false (the viewer re-processed the whole dataset). Catches: every page of 81,444 rows read."""
    fake = serve(counts={0: 20, 1: 150, 2: 20}, partial=False)
    rows = dl(fake, tmp_path / "w", "--styles", "Baroque", "Rococo", "--per-style", "10")
    assert len(rows) == 20 and fake.requests["/rows"] == 0 and fake.requests["/filter"] == 2


def test_parquet_skips_shards_by_statistics_uses_the_hf_cache_and_sends_the_token(serve, tmp_path, monkeypatch,
                                                                                    capsys):
    """Catches: a shard downloaded although its statistics show none of the wanted styles; a shard already in the
    Hugging Face cache downloaded again; HF_TOKEN not sent; a download cut halfway or a 503 on a ranged request
    ending it."""
    from huggingface_hub import hf_hub_download
    import huggingface_hub.constants as hc
    extra = [(3, jpeg(3, i)) for i in range(8)] + [(2, jpeg(2, 100 + i)) for i in range(8)] + \
        [(2, jpeg(2, 200 + i)) for i in range(8)]
    fake = serve(counts={}, extra=extra, shard_sizes=[8, 8, 8])
    # shard 2 is already in the user's Hugging Face cache (e.g. from datasets.load_dataset)
    hf_hub_download("huggan/wikiart", "data/train-00002-of-00072.parquet", repo_type="dataset", endpoint=fake.url,
                    cache_dir=hc.HF_HUB_CACHE)
    fake.log.clear()
    fake.cut_shard_once = {"train-00001-of-00072.parquet"}
    fake.cdn_unavailable = 1
    monkeypatch.setenv("HF_TOKEN", "hf_testtoken")
    rows = dl(fake, tmp_path / "w", "--source", "parquet", "--styles", "Rococo", "--per-style", "16")
    assert len(rows) == 16
    assert fake.shard_reads() == {"train-00001-of-00072.parquet"}  # shard 0: all Realism; shard 2: from the cache
    cdn_gets = [p for m, p, r in fake.log if m == "GET" and p.endswith("00001-of-00072.parquet") and r is None]
    assert len(cdn_gets) == 2  # cut halfway, then fetched again by huggingface_hub: survived
    assert "Bearer hf_testtoken" in fake.auth
    assert "parquet: train-00002-of-00072.parquet from the Hugging Face cache" in capsys.readouterr().err
    assert os.path.exists(os.path.join(hc.HF_HUB_CACHE, "datasets--huggan--wikiart"))  # used in place, kept


def test_hf_endpoint_sets_the_hub_url(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "https://hf-mirror.example/")
    try:
        assert importlib.reload(dw).parse_args([]).hub_url == "https://hf-mirror.example"
    finally:
        monkeypatch.delenv("HF_ENDPOINT")
        importlib.reload(dw)
    assert dw.parse_args([]).hub_url == "https://huggingface.co"


def test_bad_local_input(tmp_path, capsys):
    """Catches: 16-bit PNGs stored near-white, transparent pixels stored as the colour hidden under them, an
    EXIF-rotated PNG stored sideways, a.jpg
    and a.png (or two non-Latin names) collapsing into one file, two styles sharing a folder, an ambiguous label
    kept, a CSV error as a traceback."""
    src = tmp_path / "mine"
    (src / "Baroque").mkdir(parents=True)
    Image.fromarray(np.full((40, 50), 32768, np.uint16)).save(src / "Baroque" / "grey16.png")
    rgba = np.zeros((40, 50, 4), np.uint8)
    rgba[..., 0] = 255  # red hidden under fully transparent pixels
    Image.fromarray(rgba, "RGBA").save(src / "Baroque" / "clear.png")
    (src / "Baroque" / "a.jpg").write_bytes(jpeg(0, 1))
    Image.open(io.BytesIO(jpeg(0, 2))).save(src / "Baroque" / "a.png")
    turned = Image.fromarray(np.zeros((40, 60, 3), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # EXIF orientation: shown rotated by 90 degrees
    turned.save(src / "Baroque" / "turned.png", exif=exif)
    for name in ("\u7d75.jpg", "\u753b.jpg"):
        (src / "Baroque" / name).write_bytes(jpeg(0, 10 + len(name) + ord(name[0]) % 7))
    dw.main(["--out", str(tmp_path / "d"), "--from-dir", str(src), "--styles", "Baroque", "--per-style", "10",
             "--val-fraction", "0"])
    rows = list(csv.DictReader(open(tmp_path / "d" / "manifest.csv")))
    ids = {r["source_id"] for r in rows}
    assert len(rows) == 7 and len({i for i in ids if i.startswith("local-Baroque-a-")}) == 2  # a.jpg and a.png
    assert {"local-Baroque-\u7d75", "local-Baroque-\u753b"} <= ids  # non-Latin names kept as they are
    for r in rows:
        px = np.asarray(Image.open(tmp_path / "d" / r["file"]).convert("RGB"), np.float32)
        if "grey16" in r["source_id"]:
            assert abs(px.mean() - 128) < 3  # as it looks, not near-white
        if "clear" in r["source_id"]:
            assert px.min() > 250  # transparent = white, not the hidden red
        if "turned" in r["source_id"]:  # stored upright (its orientation tag does not survive the conversion)
            assert px.shape[:2] == (60, 40) and (int(r["width"]), int(r["height"])) == (40, 60)

    (src / "Art Nouveau").mkdir()
    (src / "Art_Nouveau").mkdir()
    with pytest.raises(SystemExit) as e:
        dw.main(["--out", str(tmp_path / "e"), "--from-dir", str(src), "--styles", "Art Nouveau", "Art_Nouveau"])
    assert str(e.value) == ("error: styles 'Art Nouveau' and 'Art_Nouveau' would share the folder Art_Nouveau (on a "
                            "disk that ignores case, as Windows' and macOS's do): rename one of them (or leave one out "
                            "of --styles)")

    fake = FakeHF(counts={0: 6}).start()
    try:
        listing = tmp_path / "urls.csv"
        asset = f"{fake.url}/assets/huggan/wikiart/--/main/--/default/train/{{}}/image/image.jpg?v=2"
        listing.write_text("image_url,label\n" + "".join(f"{asset.format(i)},Baroque\n" for i in range(5))
                           + f"{asset.format(0)},Cubism\n")
        dw.main(["--out", str(tmp_path / "c"), "--csv", str(listing), "--styles", "Baroque", "Cubism", "--backoff",
                 "0.01"])
        assert "is listed as both Baroque and Cubism: left out, its style is ambiguous" in capsys.readouterr().err
        got = list(csv.DictReader(open(tmp_path / "c" / "manifest.csv")))
        assert len(got) == 4 and {r["style"] for r in got} == {"Baroque"}
    finally:
        fake.stop()
    bad = tmp_path / "bad.csv"
    bad.write_text('image_url,label\nhttp://x/1.jpg,Baroque\n"http://x/2.jpg"oops,Baroque\n')
    with pytest.raises(SystemExit) as e:
        dw.main(["--out", str(tmp_path / "b"), "--csv", str(bad)])
    assert str(e.value).startswith(f"error: --csv {bad} line 3: ") and "fix or remove that line" in str(e.value)
    bad.write_bytes(b"image_url,label\nhttp://x/1.jpg,Baroque\nhttp://x/\xff.jpg,Baroque\n")
    with pytest.raises(SystemExit) as e:
        dw.main(["--out", str(tmp_path / "b"), "--csv", str(bad)])
    assert str(e.value) == f"error: --csv {bad} line 3: not UTF-8 text; save the list as UTF-8 CSV"


def test_an_interrupted_parquet_run_reads_no_finished_shard_again(serve, tmp_path, ctrl_c_at_store, capsys):
    """Catches: every shard downloaded again after Ctrl-C; the images of a finished shard forgotten by the rerun
    (which then reads further shards for nothing); a dataset with fewer shards than 72 ending in a 404 error."""
    extra = [(2, jpeg(2, 300 + i)) for i in range(24)]
    fake = serve(counts={}, extra=extra, shard_sizes=[8, 8, 8])
    ctrl_c_at_store(12)
    with pytest.raises(SystemExit):
        dl(fake, tmp_path / "w", "--source", "parquet", "--styles", "Rococo", "--per-style", "24", "--workers", "1")
    ctrl_c_at_store(None)
    first = [p for m, p, r in fake.log if m == "GET" and p.startswith("/cdn/") and r is None]
    capsys.readouterr()
    rows = dl(fake, tmp_path / "w", "--source", "parquet", "--styles", "Rococo", "--per-style", "30")
    printed = capsys.readouterr()
    assert len(rows) == 24 and "short by 6" in printed.out
    assert "huggan/wikiart has no train-00003-of-00072.parquet: every shard it has was read" in printed.err
    again = [p for m, p, r in fake.log if m == "GET" and p.startswith("/cdn/") and r is None][len(first):]
    assert sorted(p.rsplit("/", 1)[1] for p in again) == ["train-00002-of-00072.parquet"]


def test_rows_that_cannot_be_used_are_skipped_and_counted_never_mislabelled(tmp_path, capsys):
    """Catches: a row with style -1 (a ClassLabel's "no label") stored under the last style; a missing key, a style as
    a string, a null image or a row id served twice ending the run with a traceback."""
    fake = FakeHF(counts={0: 12, 4: 3}).start()
    fake.odd_rows = {
        0: lambda r: dict(r, row=dict(r["row"], style=-1)),
        1: lambda r: dict(r, row={k: v for k, v in r["row"].items() if k != "image"}),
        2: lambda r: dict(r, row=dict(r["row"], style="Baroque")),
        3: lambda r: dict(r, row=dict(r["row"], image=None)),
        4: lambda r: {k: v for k, v in r.items() if k != "row_idx"},
        5: lambda r: dict(r, row_idx=6),
    }
    try:
        dw.main(["--out", str(tmp_path / "w"), "--viewer-url", fake.url, "--hub-url", fake.url, "--backoff", "0.01",
                 "--styles", "Baroque", "Ukiyo_e", "--per-style", "20", "--val-fraction", "0"])
    finally:
        fake.stop()
    rows = list(csv.DictReader(open(tmp_path / "w" / "manifest.csv")))
    ids = {r["source_id"] for r in rows}
    assert not ids & {"hf000000", "hf000001", "hf000002", "hf000003", "hf000005"}
    assert sum(r["style"] == "Ukiyo_e" for r in rows) == sum(s == 4 for s, _ in fake.rows[:15])  # none added by -1
    err = capsys.readouterr().err
    assert "note: skipped 6 row(s) of the viewer that cannot be used (" in err
    assert "1 without a style label (-1)" in err and "2 without an image" in err


def test_names_from_the_server_cannot_drive_the_console_or_a_spreadsheet(tmp_path, capsys):
    """Catches: an ESC sequence in a style or artist name clearing the student's screen; =HYPERLINK(...) in
    manifest.csv run by a spreadsheet."""
    names = ["Baroque", "Evil\x1b]0;pwned\x07\x1b[2J" + "x" * 200]
    fake = FakeHF(counts={0: 4, 1: 4}, names=names).start()
    fake.artist_names[1] = '=HYPERLINK("http://example.invalid","click")'
    try:
        dw.main(["--out", str(tmp_path / "w"), "--viewer-url", fake.url, "--hub-url", fake.url, "--backoff", "0.01",
                 "--styles", *names, "--per-style", "4"])
    finally:
        fake.stop()
    out = capsys.readouterr().out
    assert "\x1b" not in out and max(len(line) for line in out.splitlines()) < 200
    text = open(tmp_path / "w" / "manifest.csv", encoding="utf-8").read()
    assert "'=HYPERLINK(" in text and ",=HYPERLINK(" not in text


def test_a_second_download_into_the_same_out_stops_and_names_the_first(tmp_path):
    """Catches: two downloads into one --out moving each other's files (57 of 600 manifest entries pointing at files
    the other process had moved back into .pool)."""
    out = tmp_path / "w"
    out.mkdir()
    held = dw.lock_out(str(out))  # the first download, still running
    try:
        with pytest.raises(SystemExit) as e:
            dw.main(["--out", str(out), "--viewer-url", "http://127.0.0.1:9", "--retries", "0"])
    finally:
        held.close()
    import os
    assert str(e.value) == (f"error: another download is writing into {out} (process {os.getpid()}): wait for it to "
                            "finish, or give another --out")
    assert not (out / ".state.json").exists()


@pytest.mark.parametrize("content", ["{\"images\": {\"hf1\"", "[]", "{\"images\": []}"])
def test_a_damaged_state_file_is_set_aside_not_a_traceback(tmp_path, content, capsys):
    """Catches: a truncated or edited .state.json ending every later run with a traceback and no advice."""
    (tmp_path / ".state.json").write_text(content)
    state = dw.read_state(str(tmp_path / ".state.json"))
    assert state == {"images": {}, "failed": {}, "duplicates": {}, "parquet_done": {}}
    assert (tmp_path / ".state.json.damaged").read_text() == content
    assert "is damaged" in capsys.readouterr().err


def test_a_record_without_its_hash_is_dropped_and_the_rest_kept(tmp_path, capsys):
    """Catches: one record without sha256 (an edit, an old version) crashing the dedup for the whole dataset."""
    good = {"style": "Baroque", "bytes": 10, "sha256": "0" * 64}
    (tmp_path / ".state.json").write_text(json.dumps({"images": {"a": good, "b": {"style": "Baroque"}}}))
    assert dw.read_state(str(tmp_path / ".state.json"))["images"] == {"a": good}
    assert "dropped 1 record(s) without bytes, sha256, style" in capsys.readouterr().err


def test_a_row_count_beyond_the_dataset_is_not_believed(tmp_path, capsys):
    """Catches: num_rows_total of 10^8 queuing a million page reads up front (2 GB of memory after 40 s)."""
    fake = FakeHF(counts={0: 6}).start()
    try:
        import download_wikiart
        http = download_wikiart.Http(download_wikiart.parse_args(["--backoff", "0.01", "--viewer-url", fake.url]))
        viewer = download_wikiart.Viewer(http, download_wikiart.parse_args(["--viewer-url", fake.url]))
        page = viewer.page(("rows", 0))
        page["num_rows_total"] = 10 ** 8  # what the server claims
        viewer.dataset_rows = lambda: 6
        cands, total, _ = viewer.candidates({"Baroque"}, 2)
    finally:
        fake.stop()
    assert total == 6 and len(cands) == 6
    err = capsys.readouterr().err
    assert "note: the viewer says it serves 100000000 rows, more than the dataset's 6: reading 6" in err
