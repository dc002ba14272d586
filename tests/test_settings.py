import pytest

from retrieval.errors import ConfigError
from ui.settings import load_settings


def test_defaults_without_file_or_env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = load_settings(env={})
    assert s.embedder.model == "all-MiniLM-L6-v2"
    assert s.index_dir.as_posix() == "archivist-data/index"
    assert s.search.mode == "hybrid"


def test_file_then_env_then_flags(tmp_path):
    cfg = tmp_path / "archivist.toml"
    cfg.write_text('index = "/srv/idx"\n[search]\nk = 7\nalpha = 0.3\n[embedder]\nmodel = "fake"\n')
    s = load_settings(cfg, env={"ARCHIVIST_SEARCH__K": "9"})
    assert s.search.k == 9 and s.search.alpha == 0.3 and s.embedder.model == "fake"
    assert str(s.index_dir) == "/srv/idx"
    s = load_settings(cfg, env={"ARCHIVIST_SEARCH__K": "9"}, **{"search.k": 2, "index": "/other"})
    assert s.search.k == 2 and str(s.index_dir) == "/other"


@pytest.mark.parametrize(
    "env, message",
    [
        ({"ARCHIVIST_SEARCH__KAY": "3"}, "unknown setting 'search.kay'"),
        ({"ARCHIVIST_SEARCH__K": "three"}, "not a valid int"),
        ({"ARCHIVIST_SEARCH__MODE": "magic"}, "use hybrid, dense or lexical"),
        ({"ARCHIVIST_SEARCH__ALPHA": "2"}, "between 0 and 1"),
        ({"ARCHIVIST_INGEST__OCR": "maybe"}, "not a valid bool"),
        ({"ARCHIVIST_ANSWER__PHRASING": "nothing"}, "use extract or model"),
        ({"ARCHIVIST_ANSWER__MAX_FALSE_ABSTAIN": "0.9"}, "a share between 0 and 0.5"),
        ({"ARCHIVIST_FINETUNE__CURATED_REPEAT": "0"}, "use a count from 1 to 20"),
        ({"ARCHIVIST_GENERATOR__WEIGHTS": "int2"}, "use f16, as-shipped"),
        ({"ARCHIVIST_EMBEDDER__RUNTIME": "gpu"}, "embedder.runtime = 'gpu'; use auto"),
    ],
)
def test_bad_settings_name_the_setting(env, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(env=env)


def test_broken_toml_is_reported(tmp_path):
    cfg = tmp_path / "archivist.toml"
    cfg.write_text("[search\nk=1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(cfg, env={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", env={})


def test_an_existing_index_keeps_the_family_of_vectors_that_built_it(tmp_path, monkeypatch):
    """auto takes the fastest runtime the machine's self-test measured: of any family for a new index,
    of the index's own family otherwise (an int8 index is searched with int8 vectors, an fp32 one on
    torch or onnxruntime fp32, the same vectors). An existing index never waits for a self-test; a
    setting wins; a model other than MiniLM is always fp32 on torch."""
    import sqlite3

    from retrieval import runtime_choice
    from ui.services.compose import embedding_runtime, embedding_runtime_record

    rates = {"torch": 40.0, "onnx-fp32": 50.0, "onnx-int8": 60.0}
    measured = []
    monkeypatch.setattr(runtime_choice, "installed_runtimes", lambda: list(rates))
    monkeypatch.setattr(runtime_choice, "measure",
                        lambda model_dir, runtimes, passages, **kw: measured.append(runtimes) or dict(rates))

    def settings(**env):
        return load_settings(env={"ARCHIVIST_DATA_DIR": str(tmp_path / "data"), **env})

    assert embedding_runtime(settings()) == "onnx-int8"  # no index yet: the self-test's fastest
    assert measured == [list(rates)]
    index = settings().index_dir
    index.mkdir(parents=True)
    with sqlite3.connect(index / "archivist.sqlite") as con:
        con.execute("CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        con.execute("INSERT INTO meta VALUES('embedder', 'sentence-transformers/all-MiniLM-L6-v2')")
    assert embedding_runtime(settings()) == "onnx-fp32"  # the fastest of the fp32 family
    with sqlite3.connect(index / "archivist.sqlite") as con:
        con.execute("UPDATE meta SET value = value || '+onnx-int8'")
    assert embedding_runtime(settings()) == "onnx-int8"
    assert embedding_runtime(settings(ARCHIVIST_EMBEDDER__RUNTIME="torch")) == "torch"
    assert embedding_runtime(settings(ARCHIVIST_EMBEDDER__MODEL=str(tmp_path))) == "torch"
    embedding_runtime_record(settings()).unlink()
    with sqlite3.connect(index / "archivist.sqlite") as con:
        con.execute("UPDATE meta SET value = 'sentence-transformers/all-MiniLM-L6-v2'")
    assert embedding_runtime(settings()) == "torch"  # no record: the family's first, and no self-test
    assert len(measured) == 1


def test_a_runtime_that_fails_its_self_test_is_recorded_and_never_chosen(tmp_path, monkeypatch):
    import json

    import numpy as np

    from retrieval import runtime_choice

    class Quick:
        def encode(self, texts):
            return np.zeros((len(texts), 4), dtype=np.float32)

    def encoder_for(runtime, model_dir, **kwargs):
        if runtime == "onnx-fp32":
            raise RuntimeError("this onnxruntime has no EmbedLayerNormalization")
        return Quick()

    monkeypatch.setattr(runtime_choice, "installed_runtimes", lambda: ["torch", "onnx-fp32"])
    monkeypatch.setattr(runtime_choice, "encoder_for", encoder_for)
    record = tmp_path / "embedding-runtime.json"
    assert runtime_choice.chosen_runtime(record, tmp_path) == "torch"
    rates = json.loads(record.read_text())["chunks_per_s"]
    assert rates["onnx-fp32"] is None and rates["torch"] > 0
    assert runtime_choice.chosen_runtime(record, tmp_path, family="fp32") == "torch"
    from ui.cli import _runtime_test_text

    assert "onnx-fp32 failed" in _runtime_test_text(json.loads(record.read_text()))  # what archivist stats says
