/** Tailwind scans the templ sources (and generated Go) for class names. */
module.exports = {
  content: ["./views/**/*.templ", "./static/app.js"],
  theme: { extend: {} },
  plugins: [],
};
