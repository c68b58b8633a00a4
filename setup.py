"""Ships the top-level prompts/ inside the package, as bot/prompts/, at build time.

prompts/ is the one copy people edit (feeds.yaml's llm.prompts_dir points at it); an installed
briefbot has no checkout beside it, so the wheel carries these files for bot.summarise.prompts."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PROMPTS = Path(__file__).resolve().parent / "prompts"


class BuildPyWithPrompts(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "bot" / "prompts"
        self.mkpath(str(target))
        for path in sorted(PROMPTS.glob("*.md")):
            self.copy_file(str(path), str(target / path.name))


setup(cmdclass={"build_py": BuildPyWithPrompts})
