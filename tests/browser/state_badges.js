(states) => {
  const rgb = (css) => css.match(/[\d.]+/g).slice(0, 3).map(Number);
  const luminance = (c) => {
    const [r, g, b] = c.map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const ratio = (a, b) => { const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  const card = document.querySelector('.card');
  const out = {};
  for (const state of [...states, 'no-such-state']) {
    const badge = document.createElement('span');
    badge.className = `state state-${state}`;
    badge.textContent = state;
    card.appendChild(badge);
    const style = getComputedStyle(badge);
    const fg = rgb(style.color), bg = rgb(style.backgroundColor);
    out[state] = { paint: `${fg} on ${bg}`, contrast: ratio(fg, bg) };
  }
  return out;
}
