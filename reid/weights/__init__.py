"""Other codebases' weight files in and out: OpenAI CLIP ``.pt`` files, CLIP-ReID and SVLL-ReID checkpoints.

* :mod:`reid.weights.openai_keys` — OpenAI's transformer key names <-> Hugging Face CLIP's (fused q/k/v split/merge);
* :mod:`reid.weights.openai_files` — reading OpenAI's files (TorchScript archive or state dict, fp16 -> fp32) and
  writing them as a Hugging Face ``save_pretrained`` folder;
* :mod:`reid.weights.clipreid_layout` — what a CLIP-ReID / SVLL-ReID ``model.state_dict()`` holds, read off its
  shapes, and its conversion to and from a reid system state dict;
* :mod:`reid.weights.run_folder` — an imported checkpoint written as a reid run folder.

docs/weights.md has the commands and what was checked.
"""
