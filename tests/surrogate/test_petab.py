"""PEtab-style measurement tables: round trip and precise errors."""

import numpy as np
import pytest

from pbhno_gym.surrogate.petab import PetabError, read_measurements

HEAD = "observableId\tsimulationConditionId\ttime\tmeasurement\tnoiseParameters\n"


def _write(path, text):
    path.write_text(text)
    return path


def test_roundtrip_normalises_and_builds_schedules(tmp_path):
    m = _write(
        tmp_path / "m.tsv",
        HEAD + "H_cell0\tctrl\t0\t4.0\t0.5\nH_cell1\tctrl\t30\t6.0\t\nH_cell0\tpulse\t60\t27.0\t1.5\n",
    )
    c = _write(
        tmp_path / "c.tsv",
        "simulationConditionId\ttime\tligand_left\tgsi\npulse\t0\t0.05\t0\npulse\t30\t0\t2.0\n",
    )
    ds = read_measurements(m, "pbhno/Notch-v1", c)
    assert ds.meta["conditions"] == ["ctrl", "pulse"]
    assert ds["meas_values"].shape == (2, 3, 2) and ds["meas_mask"].sum() == 3
    assert ds["meas_values"][0, 0, 0] == pytest.approx(4.0 / 30.0)  # H normalised by the 0..30 range
    assert ds["meas_sd"][1, 2, 0] == pytest.approx(1.5 / 30.0)
    np.testing.assert_allclose(ds["actions"][1, :, 0], [0.05, 0.0])
    np.testing.assert_allclose(ds["actions"][1, :, 2], [0.0, 2.0])
    assert not ds["actions"][0].any()


@pytest.mark.parametrize(
    "body,match",
    [
        ("X_cell0\tc\t0\t1\t\n", r"row 2, column 'observableId': unknown observable 'X_cell0'"),
        ("H_cell0\tc\t0\tabc\t\n", r"row 2, column 'measurement': not a number"),
        (  # off-grid times are accepted now (tests/surrogate/test_offgrid.py); negative ones are not
            "H_cell0\tc\t0\t1\t\nH_cell0\tc\t-45\t1\t\n",
            r"row 3, column 'time': must be >= 0 min, got -45.0",
        ),
        ("H_cell0\tc\t30\t1\t-2\n", r"row 2, column 'noiseParameters': must be positive"),
    ],
)
def test_malformed_tables_name_row_and_column(tmp_path, body, match):
    with pytest.raises(PetabError, match=match):
        read_measurements(_write(tmp_path / "m.tsv", HEAD + body), "pbhno/Notch-v1")


def test_missing_column_and_bad_condition(tmp_path):
    with pytest.raises(PetabError, match=r"missing column\(s\) \['measurement'\]"):
        read_measurements(
            _write(tmp_path / "m.tsv", "observableId\tsimulationConditionId\ttime\nH_cell0\tc\t0\n"),
            "pbhno/Notch-v1",
        )
    m = _write(tmp_path / "m2.tsv", HEAD + "H_cell0\tc\t30\t1\t\n")
    c = _write(tmp_path / "c.tsv", "simulationConditionId\ttime\tgsi\nc\t0\t50\n")
    with pytest.raises(PetabError, match=r"row 2, column 'gsi': 50.0 outside the bounds"):
        read_measurements(m, "pbhno/Notch-v1", c)
    c2 = _write(tmp_path / "c2.tsv", "simulationConditionId\ttime\tgsi\nc\t0\t1\nc\t45\t0\n")
    with pytest.raises(
        PetabError, match=r"c2.tsv: row 3, column 'time': .* start on the 30-min control grid"
    ):
        read_measurements(m, "pbhno/Notch-v1", c2)
