from lingua_node._jobs import JobBook


def test_admits_up_to_max_jobs_then_refuses_as_overloaded() -> None:
    book = JobBook(max_jobs=2)
    assert book.admit(("a", "1")) is None
    assert book.admit(("b", "1")) is None
    assert book.admit(("c", "1")) == "NODE_OVERLOADED"


def test_draining_refuses_new_jobs_but_running_ones_finish() -> None:
    book = JobBook(max_jobs=2)
    book.admit(("a", "1"))
    book.draining = True
    assert book.admit(("b", "1")) == "NODE_UNAVAILABLE"
    assert book.finish(("a", "1"), success=True) is True
    assert book.idle
    assert book.done == 1


def test_cancel_before_start_drops_and_after_start_discards() -> None:
    book = JobBook(max_jobs=2)
    book.admit(("a", "1"))
    assert book.cancel("a") == 1
    assert not book.should_start(("a", "1"))
    assert book.finish(("a", "1"), success=True) is False
    assert book.discarded == 1
    assert book.done == 0


def test_cancel_names_one_attempt_and_spares_a_newer_one() -> None:
    book = JobBook(max_jobs=3)
    book.admit(("a", "1"))
    book.admit(("a", "2"))
    assert book.cancel("a", "1") == 1
    assert book.should_start(("a", "2"))


def test_a_lost_connection_discards_what_was_running() -> None:
    book = JobBook(max_jobs=2)
    book.admit(("a", "1"))
    book.drop_all()
    assert book.finish(("a", "1"), success=True) is False
    assert book.admit(("a", "2")) is None
    assert book.should_start(("a", "2"))
