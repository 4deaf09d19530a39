// ESLint for the web page's scripts: ES modules run as they are by the browser (no build
// step), so the recommended rules with the browser's globals and nothing else.
import js from "@eslint/js";
import globals from "globals";

export default [
  {
    files: ["src/painterly/web/static/**/*.js"],
    ...js.configs.recommended,
    languageOptions: {
      ecmaVersion: "latest",
      sourceType: "module",
      globals: globals.browser,
    },
  },
];
