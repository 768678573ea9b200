"""The LEGO attention study's report: tables and figures from evaluated runs (fabricated here)."""
import json
import math

from experiments.lego import evaluation


def _result(variant, seed, accuracy):
  scores = {f"layer_{i}/head_{h}": {"association": 0.1 * h, "manipulation": 0.2 * i}
            for i in range(2) for h in range(2)}
  return {"variant": variant, "seed": seed, "chain": [accuracy] * 3,
          "tree": [accuracy, accuracy, math.nan], "head_scores": scores}


def test_report_averages_seeds_orders_variants_and_marks_missing_cells(tmp_path):
  results = [_result("lego", 0, 0.5), _result("vanilla", 0, 0.9), _result("vanilla", 1, 0.7)]
  chain = evaluation.markdown_table(results, "chain", 3).splitlines()
  assert chain[2] == "| vanilla (2) | 0.800 | 0.800 | 0.800 |"
  assert chain[3].startswith("| lego (1) | 0.500")
  assert evaluation.markdown_table(results, "tree", 3).splitlines()[2].endswith("| – |")
  heads = evaluation.head_table(results).splitlines()
  assert heads[2] == "| vanilla | 0.10 0.10 | 0.00 0.20 |"
  evaluation.main(["report", _dump(tmp_path, results), "--figures", str(tmp_path), "--trained",
                       "2"])
  assert (tmp_path / "lego_by_position.png").exists() and (tmp_path / "lego_tree.png").exists()


def _dump(tmp_path, results):
  path = tmp_path / "results.json"
  path.write_text(json.dumps(results))
  return str(path)


def test_variant_names_attention_and_tying_apart():
  from experiments.configs.lego import get_config
  from experiments.lego.evaluation import variant
  names = {arg: variant(get_config(arg)) for arg in (
      None, "tied=False", "attention=vanilla", "attention=vanilla,tied=False", "mimic",
      "mimic,tied=False", "attention=conv_qkv,tied=False")}
  assert names == {None: "tied", "tied=False": "lego", "attention=vanilla": "vanilla_tied",
                   "attention=vanilla,tied=False": "vanilla", "mimic": "mimic_tied",
                   "mimic,tied=False": "mimic", "attention=conv_qkv,tied=False": "conv_qkv"}


def test_recipe_names_the_fields_a_run_changed():
  from experiments.configs.lego import get_config
  from experiments.lego.evaluation import recipe
  assert recipe(get_config()) == ""
  config = get_config("attention=vanilla,d_model=128")
  config.model.pos_encoding = "rotary"
  assert recipe(config) == "model.d_model=128,model.pos_encoding=rotary"
