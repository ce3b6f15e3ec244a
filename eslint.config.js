// Lint: eslint's recommended rules plus typescript-eslint's, type-aware where it pays
// (floating promises are how a lost sample or an unhandled rejection sneaks in), and the
// dependency rule of the layout (../shared/DESIGN.md, the README's Layout): imports only go down
// the data flow, decoders ← streams ← gateway ← cli; simulator ← cli, loadtest; testkit ← test,
// loadtest; the product never imports test code or load tools; the page imports one
// wire-contract file. Every top-level folder name is unique, so a pattern on the folder name in
// the import path is enough to tell where an import lands.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

const TOP = ['decoders', 'streams', 'gateway', 'cli', 'simulator', 'testkit', 'loadtest', 'test']
/** Relative imports of these top-level folders are refused from `files`, with a reason. */
function forbid (files, folders, why, extra = {}) {
  const group = folders.flatMap(f => [`../${f}/**`, `../../${f}/**`, `../../../${f}/**`])
  return {
    files,
    ...extra,
    rules: { 'no-restricted-imports': ['error', { patterns: [{ group, message: why }] }] }
  }
}
const not = (...keep) => TOP.filter(f => !keep.includes(f))

export default tseslint.config(
  { ignores: ['node_modules/**', 'data/**', 'coverage/**', 'dashboard/vendor/**', '.tmp/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname }
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off'
    }
  },
  {
    // Drives Chromium: type-checked with the tests' project (DOM + Node), see test/tsconfig.json.
    files: ['loadtest/dashboard-render.ts'],
    languageOptions: { parserOptions: { projectService: false, project: './test/tsconfig.json', tsconfigRootDir: import.meta.dirname } }
  },
  {
    files: ['**/*.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } }
  },
  forbid(['decoders/**/*.ts'], not('decoders'), 'decoders/ imports nothing from the other folders'),
  forbid(['streams/**/*.ts'], not('decoders', 'streams'), 'streams/ may import only decoders/ (imports go down the flow)'),
  forbid(['gateway/**/*.ts'], not('decoders', 'streams', 'gateway'), 'gateway/ may import only decoders/ and streams/ (through streams/index.ts)'),
  forbid(['simulator/**/*.ts'], not('decoders', 'simulator'), 'simulator/ may import only decoders/'),
  forbid(['cli/**/*.ts'], ['testkit', 'loadtest', 'test'], 'the product never imports test code or load tools', { ignores: ['cli/bench.ts'] }),
  forbid(['testkit/**/*.ts'], ['cli', 'loadtest', 'test'], 'testkit/ serves test/ and loadtest/; it imports the product, never them'),
  forbid(['loadtest/**/*.ts'], ['test'], 'loadtest/ uses testkit/, never test/'),
  {
    files: ['dashboard/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{
          regex: '^\\.\\./\\.\\./(?!streams/live/protocol\\.js$)',
          message: 'the page imports only its own files and the wire contract streams/live/protocol.ts'
        }]
      }]
    }
  }
)
