from retrieval.fusion import convex, rrf


def test_rrf_rewards_agreement():
    fused = rrf([[(1, 9.0), (2, 8.0), (3, 7.0)], [(3, 0.9), (1, 0.8), (4, 0.1)]])
    order = [cid for cid, _ in fused]
    assert order[0] == 1  # ranks 1 and 2
    assert set(order) == {1, 2, 3, 4}
    assert order.index(3) < order.index(2)  # 3 is in both lists


def test_convex_normalises_and_weights():
    dense = [(1, 0.9), (2, 0.5), (3, 0.1)]
    lexical = [(3, 30.0), (2, 20.0), (1, 10.0)]
    assert convex(dense, lexical, alpha=1.0)[0][0] == 1
    assert convex(dense, lexical, alpha=0.0)[0][0] == 3
    scores = dict(convex(dense, lexical, alpha=0.5))
    assert abs(scores[2] - 0.5) < 1e-9  # middle of both lists
    assert convex([], [], 0.5) == []


def test_relative_keeps_distance_from_each_lists_best():
    from retrieval.fusion import relative

    dense = [(1, 0.8), (2, 0.4)]
    lexical = [(2, 10.0), (3, 9.0)]
    scores = dict(relative(dense, lexical, alpha=0.5))
    assert abs(scores[1] - 0.5) < 1e-9 and abs(scores[2] - 0.75) < 1e-9 and abs(scores[3] - 0.45) < 1e-9
    assert relative([(1, -0.2)], [], 0.5) == [(1, 0.0)]
