from lifecycle.progress import progress_summary


def test_progress_reads_as_one_line():
    assert progress_summary({"stage": "training", "epoch": 3, "epochs": 30}) == "training, epoch 3/30"
    assert progress_summary({"stage": "embedding", "embedded": 120, "total": 240}) == (
        "embedding, 120/240 embedded"
    )
    assert progress_summary({"stage": "ready"}) == "ready"


def test_no_progress_reads_empty():
    assert progress_summary(None) == "" and progress_summary({}) == ""
