"""Part 2's answer to "is the classification based on the relevant parts?": per image the map against a uniform map
and the centre prior, images whose box cannot tell left out, and in total paired exact tests whose verdict the
words follow. Rows are written as assignment_4b.py writes predictions.csv."""
import os

from conftest import ROOT, load_report_script

make_report = load_report_script("make_report")
part2 = load_report_script("part2")
stats = load_report_script("stats")


def row(i, mass, area, prior, hit=True, prior_hit=False):
    return {"file": f"img{i}.jpg", "top1_name": "cup", "top1_prob": "0.9", "plausible": "yes (top-1)",
            "object": "the cup", "box_in_crop": "10 10 50 50", "box_mass_vanilla": f"{mass:.4f}",
            "box_share_of_crop": f"{area:.4f}", "box_mass_centre_prior": f"{prior:.4f}", "hit_vanilla": str(int(hit)),
            "hit_centre_prior": str(int(prior_hit))}


def test_an_image_whose_box_covers_most_of_the_crop_is_named_and_left_out():
    """Catches: a box covering the whole crop (cat_chelsea.jpg: 100%) read as evidence that the map is on the cat."""
    whole = row(0, 1.0, 1.0, 1.0, hit=True, prior_hit=True)
    assert "cannot tell where the map looks" in part2.image_sentence(whole, "vanilla", ROOT)
    assert part2.box_comparison([whole, row(1, 0.5, 0.1, 0.2)], "vanilla")["n"] == 1
    assert "1 of the 2 images with a box cannot tell" in part2.overall_sentence([whole, row(1, .5, .1, .2)],
                                                                                        "vanilla")


def test_each_image_is_weighed_against_both_baselines():
    """Catches: the sentence stating the map's mass without saying it did worse than the centre prior."""
    s = part2.image_sentence(row(0, 0.365, 0.304, 0.466, hit=True, prior_hit=True), "vanilla", ROOT)
    assert "the map puts 36.5% of its mass in the box of the cup: more than a uniform map (30.4%" in s
    assert "and less than the centre prior (46.6%)" in s and "as is the centre prior's" in s
    s = part2.image_sentence(row(0, 0.2, 0.1, 0.05, hit=True, prior_hit=False), "vanilla", ROOT)
    assert "its peak is on the object where the centre prior's peak misses it" in s


def test_a_map_that_is_the_centre_prior_is_never_called_relevant():
    """Catches: "based on the relevant parts" said of a map that is the centre prior itself (planted: map = prior)."""
    rows = [row(i, 0.3 + i / 100, 0.1, 0.3 + i / 100, hit=True, prior_hit=True) for i in range(10)]
    text = part2.overall_sentence(rows, "vanilla")
    assert "based on the relevant parts, as far" not in text and "does not beat both baselines" in text
    prior = part2.box_comparison(rows, "vanilla")["prior"]
    assert prior["wins"] == prior["losses"] == 0 and prior["p"] == 1.0


def test_a_map_that_beats_both_on_enough_images_is_called_relevant():
    """Catches: the verdict withheld when the paired tests support it, or p-values from the wrong tail."""
    rows = [row(i, 0.6, 0.1, 0.3, hit=True, prior_hit=i % 2 == 0) for i in range(8)]
    c = part2.box_comparison(rows, "vanilla")
    assert c["uniform"]["wins"] == 8 and abs(c["uniform"]["p"] - 2 * 0.5 ** 8) < 1e-12
    assert c["only_map"] == 4 and c["only_prior"] == 0 and abs(c["p_point"] - 2 * 0.5 ** 4) < 1e-12
    assert "The map beats both baselines significantly" in part2.overall_sentence(rows, "vanilla")


def test_a_map_that_loses_on_every_image_is_not_called_relevant():
    """Catches: a significant difference in the wrong direction (the map below the baselines) read as support."""
    rows = [row(i, 0.05, 0.1, 0.3, hit=False, prior_hit=True) for i in range(8)]
    c = part2.box_comparison(rows, "vanilla")
    assert c["uniform"]["p"] < 0.05 and not part2.beats_both(c)


def test_too_few_images_say_so_and_how_many_it_would_take():
    """Catches: three images that all go the map's way reported as evidence (no two-sided paired test of 3 images
    can reach p < 0.05: 2 x 0.5^3 = 0.25)."""
    rows = [row(i, 0.6, 0.1, 0.3) for i in range(3)]
    text = part2.overall_sentence(rows, "vanilla")
    assert "the images cannot tell whether the classification is based on the relevant parts" in text
    assert "it takes at least 6 images that can tell" in text


def test_each_method_gets_the_same_paired_answer_in_the_extras_table():
    """Catches: the extras' table giving raw means per method without the paired tests, so that the report cannot
    say which method beats the baselines on these images."""
    rows = []
    for i in range(8):
        r = row(i, 0.6, 0.1, 0.3, hit=True, prior_hit=False)  # vanilla: ahead of both on every image
        r.update({"box_mass_gradcam": "0.2000", "hit_gradcam": "0", "centre_share_vanilla": "0.3",
                  "centre_share_gradcam": "0.5"})                 # gradcam: between the baselines
        rows.append(r)
    blocks = part2.methods_blocks(rows, ["vanilla", "gradcam"], {})
    header, table = next(b[1:3] for b in blocks if b[0] == "table" and "beats both?" in b[1])
    by = {r[0]: r for r in table}
    assert by["vanilla"][-1] == "yes" and by["gradcam"][-1] == "no"
    assert by["vanilla"][3] == "8 / 0, p = 0.008" and by["gradcam"][4] == "0 / 8, p = 0.008"


def test_the_images_needed_are_the_fewest_whose_paired_test_gets_strictly_below_alpha():
    """Catches: the count from the wrong tail (3 x 0.5^n, the same 6 at alpha = 0.05 but 9 at 0.01) or p <= alpha
    for p < alpha (at alpha = 1/16, five images all one way give p = 2 x 0.5^5 = 1/16 exactly: not below it)."""
    assert [stats.images_needed(a) for a in (0.05, 0.01, 1 / 16, 0.5)] == [6, 8, 6, 3]


def test_an_image_without_the_methods_mass_cannot_tell_for_that_method():
    """Catches (a mutmut survivor): an image counted for a method that has no mass in its box (no such column, as
    for a method the extras did not run) because it names an object."""
    r = row(0, 0.6, 0.1, 0.3)
    assert part2.can_tell(r, "vanilla") and not part2.can_tell(r, "gradcam")
    assert not part2.can_tell(dict(r, object=""), "vanilla")


def test_the_pointing_game_pairs_the_map_and_the_prior_image_by_image():
    """Catches (mutmut survivors): the prior's hits read inverted, or the images where both hit counted as the map's
    own (the older tests had the prior hit on every other image, where both read alike)."""
    hits, prior_hits = [1, 1, 1, 1, 1, 1, 1, 0], [1, 1, 0, 0, 0, 0, 0, 1]
    rows = [row(i, 0.6, 0.1, 0.3, hit=h, prior_hit=p) for i, (h, p) in enumerate(zip(hits, prior_hits))]
    c = part2.box_comparison(rows, "vanilla")
    assert (c["hits"], c["prior_hits"], c["only_map"], c["only_prior"]) == (7, 3, 5, 1)
    assert abs(c["p_point"] - 2 * 7 / 64) < 1e-12  # exact McNemar: 2 x P(at most 1 of 6 | 1/2)


def test_the_sentence_gives_the_mean_masses_of_the_map_and_of_both_baselines():
    """Catches (a mutmut survivor): the map's mean mass in the boxes reported as 0 (no test read the means)."""
    rows = [row(0, 0.6, 0.1, 0.3), row(1, 0.4, 0.2, 0.5)]
    text = part2.overall_sentence(rows, "vanilla")
    assert "means 50.0% against 15.0%" in text and "the prior's mean 40.0%" in text


def saliency_then_report(tmp_path, change):
    """assignment_4b.py over a.png, b.png and a damaged c.png; then change(images folder); then the report's Part 2.
    -> (report.md, the saliency folder's files)"""
    import assignment_4b as a4b
    from conftest import write_image
    imgs, sal, out = tmp_path / "imgs", tmp_path / "sal", tmp_path / "rep"
    imgs.mkdir()
    write_image(imgs / "a.png", seed=1)
    write_image(imgs / "b.png", seed=2)
    (imgs / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    a4b.main(["--images", str(imgs), "--out", str(sal)])
    change(imgs)
    none = str(tmp_path / "none")
    make_report.main(["--runs", none, "--saliency", str(sal), "--paintings", none, "--extras", none,
                      "--ground-truth", none, "--data", none, "--images", str(imgs), "--out", str(out), "--no-pdf"])
    return (out / "report.md").read_text(), sorted(os.listdir(sal))


def test_the_report_names_images_added_removed_and_skipped_since_the_maps(vgg_weights, tmp_path):
    """Catches: the report trusting report/saliency/ whatever My-Images/ now holds: a photo added later not
    mentioned, a photo deleted still reported, the damaged photos 4b skipped never named."""
    def change(imgs):
        (imgs / "b.png").unlink()
        write_image(imgs / "d.png", seed=4)
    from conftest import write_image
    md, _ = saliency_then_report(tmp_path, change)
    part2 = md[md.index("## Part 2"):]
    assert "**The maps are not up to date with the images.**" in part2
    assert "1 image(s) in" in part2 and "have no map (added after the run, or not reached): d.png." in part2
    assert "1 image(s) with maps are no longer in" in part2 and ": b.png; they are left out" in part2
    assert "1 file(s) could not be read as images and were skipped: c.png." in part2
    assert "`python assignment_4b.py` brings the maps up to date with the folder." in part2
    table = part2[part2.index("| image |"):].split("\n\n")[0]
    assert "| a.png |" in table and "b.png" not in table


def test_maps_that_match_the_folder_are_not_called_out_of_date(vgg_weights, tmp_path):
    """Catches: an up-to-date run (but for a damaged file, which no rerun mends) called out of date."""
    md, _ = saliency_then_report(tmp_path, lambda imgs: None)
    assert "not up to date" not in md and "skipped: c.png." in md


def test_a_rerun_leaves_no_figure_of_an_image_no_longer_there(vgg_weights, tmp_path):
    """Catches: the figure of a deleted photo left in report/saliency/ and packed into the hand-in."""
    import assignment_4b as a4b
    from conftest import write_image
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for name in ("a.png", "b.png"):
        write_image(imgs / name, seed=len(name))
    a4b.main(["--images", str(imgs), "--out", str(tmp_path / "sal")])
    (imgs / "b.png").unlink()
    a4b.main(["--images", str(imgs), "--out", str(tmp_path / "sal")])
    assert sorted(f for f in os.listdir(tmp_path / "sal") if f.endswith("_saliency.png")) == ["a_saliency.png"]


def test_a_saliency_run_cut_short_is_said_to_be(tmp_path):
    """Catches: a report over the images a Ctrl-C'd run finished, read as if it were all of them."""
    settings = {"listed": ["a.png", "b.png", "c.png"], "skipped_files": [], "interrupted": True}
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "b.png").write_bytes(b"x")
    (tmp_path / "c.png").write_bytes(b"x")
    rows, notes, current = part2.out_of_date([row(0, 0.1, 0.1, 0.1) | {"file": "a.png"}], settings,
                                                   str(tmp_path))
    assert not current and notes[0] == ("The saliency run was stopped before it finished (Ctrl-C or a kill): 1 of 3 "
                                        "images have maps.")


def test_a_classifier_at_chance_is_said_to_be_guessing():
    """Catches: Part 2 read as if VGG-16 recognised the photographs while every top-1 probability is 1/1000 (weights
    that are not ImageNet's): Part 1 says so of its runs, Part 2 did not."""
    rows = [{"top1_prob": "0.001128"}, {"top1_prob": "0.001004"}]
    text = part2.guessing_sentence(rows, "VGG-16 (ImageNet)")
    assert text.startswith("**The classifier is guessing here:** no image's top-1 probability is above 0.0011, "
                           "within twice 1/1000 = 0.0010")
    assert part2.guessing_sentence(rows + [{"top1_prob": "0.31"}], "VGG-16 (ImageNet)") is None
    assert part2.guessing_sentence(rows, "--checkpoint runs/r/best.pt") is None
