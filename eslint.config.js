// @ts-check
import js from '@eslint/js'
import tseslint from 'typescript-eslint'
import globals from 'globals'

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-console': ['error', { allow: ['error'] }]
    }
  },
  {
    // CLIs print for people; the server logs through pino.
    files: ['simulators/**', 'scripts/**', 'bench/**'],
    rules: { 'no-console': 'off' }
  },
  {
    // The web console: plain ES modules run by the browser as they are (no build step).
    files: ['console/**/*.js'],
    languageOptions: { globals: globals.browser }
  }
)
